//! `generate man|completions DIR` (hidden): the man page and the shell
//! completions, written from the clap definitions for the .deb (scripts/package.sh).

use crate::error::{Error, Result};
use clap::{CommandFactory, ValueEnum};
use clap_complete::Shell;
use std::path::{Path, PathBuf};

/// What `generate` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Artifact {
    /// `recon-companion.1` (roff), one page for the command and its subcommands.
    Man,
    /// bash (`recon-companion`), zsh (`_recon-companion`) and fish (`recon-companion.fish`).
    Completions,
}

/// The shells a package installs completions for.
pub const SHELLS: [Shell; 3] = [Shell::Bash, Shell::Zsh, Shell::Fish];

/// Writes the artifact into `dir` (created if absent); returns the files written, sorted.
pub fn generate(artifact: Artifact, dir: &Path) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let mut cmd = super::Cli::command();
    let name = cmd.get_name().to_string();
    let mut written = Vec::new();
    match artifact {
        Artifact::Man => {
            // recon-companion.1, and recon-companion-SUBCOMMAND.1 for each visible subcommand.
            clap_mangen::generate_to(cmd, dir).map_err(|e| Error::io(dir, e))?;
            let entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
            for entry in entries {
                let path = entry.map_err(|e| Error::io(dir, e))?.path();
                let is_page = path.extension().is_some_and(|x| x == "1") && path.file_name().is_some_and(|n| n.to_string_lossy().starts_with(&name));
                if is_page {
                    written.push(path);
                }
            }
        }
        Artifact::Completions => {
            cmd.build();
            for shell in SHELLS {
                written.push(clap_complete::generate_to(shell, &mut cmd, &name, dir).map_err(|e| Error::io(dir, e))?);
            }
        }
    }
    written.sort();
    Ok(written)
}

/// The subcommand: writes, then prints each file's path.
pub fn generate_cmd(artifact: Artifact, dir: &Path) -> Result<i32> {
    for path in generate(artifact, dir)? {
        println!("{}", path.display());
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_man_page_and_three_completions() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        let man = generate(Artifact::Man, dir.path()).unwrap_or_else(|e| panic!("man: {e}"));
        let main = dir.path().join("recon-companion.1");
        assert!(man.contains(&main), "{man:?}");
        assert!(man.contains(&dir.path().join("recon-companion-assign-categories.1")), "{man:?}");
        assert!(!man.iter().any(|p| p.to_string_lossy().contains("generate")), "the hidden subcommand gets no page: {man:?}");
        let page = std::fs::read_to_string(&main).unwrap_or_default();
        assert!(page.contains(".TH recon-companion 1"), "{page}");
        assert!(page.contains("assign\\-categories"), "subcommands are listed: {page}");
        assert!(page.contains("recon\\-companion\\-serve(1)"), "subcommand pages are referenced: {page}");
        assert!(!page.contains("companion\\-generate"), "the hidden subcommand stays out of the page: {page}");
        let files = generate(Artifact::Completions, dir.path()).unwrap_or_else(|e| panic!("completions: {e}"));
        let names: Vec<String> = files.iter().filter_map(|p| p.file_name()).map(|n| n.to_string_lossy().into_owned()).collect();
        assert_eq!(names, ["_recon-companion", "recon-companion.bash", "recon-companion.fish"]);
        let bash = std::fs::read_to_string(&files[1]).unwrap_or_default();
        assert!(bash.contains("verify-qdrant"), "{bash}");
    }
}
