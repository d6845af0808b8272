//! RECON's own schema, once: what RECON creates (recon-integration.md). The demo
//! generator and every test fixture build recon.db from it; the companion's
//! feature columns and `companion_*` tables are added by `recon::db::migrate`.

/// RECON's schema as RECON creates it (tables, index, later migrations, and
/// tables of its own the companion never touches): shared by every fixture.
pub const RECON_SCHEMA: &str = r#"
CREATE TABLE catalogue (hash TEXT PRIMARY KEY, filename TEXT NOT NULL, path TEXT NOT NULL,
    size_bytes INTEGER, source TEXT, category TEXT,
    status TEXT DEFAULT 'catalogued',
    discovered_at TEXT DEFAULT CURRENT_TIMESTAMP);
CREATE TABLE documents (hash TEXT PRIMARY KEY, filename TEXT NOT NULL, path TEXT,
    size_bytes INTEGER, page_count INTEGER, book_title TEXT,
    book_author TEXT, collection TEXT DEFAULT 'survival',
    status TEXT DEFAULT 'pending', pages_extracted INTEGER DEFAULT 0,
    concepts_extracted INTEGER DEFAULT 0, vectors_inserted INTEGER DEFAULT 0,
    discovered_at TEXT DEFAULT CURRENT_TIMESTAMP, extracted_at TEXT,
    enriched_at TEXT, embedded_at TEXT, error_message TEXT,
    retry_count INTEGER DEFAULT 0);
CREATE INDEX idx_documents_status ON documents(status);
-- RECON's later migrations, applied the way RECON applies them.
ALTER TABLE catalogue ADD COLUMN path_updated_at TEXT;
ALTER TABLE documents ADD COLUMN organized_at TEXT;
-- Tables of RECON's own the companion must never touch.
CREATE TABLE pages (hash TEXT NOT NULL, page_number INTEGER NOT NULL, text TEXT,
    PRIMARY KEY (hash, page_number));
CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE processing_log (id INTEGER PRIMARY KEY AUTOINCREMENT, hash TEXT, stage TEXT,
    message TEXT, created_at TEXT DEFAULT CURRENT_TIMESTAMP);
"#;
