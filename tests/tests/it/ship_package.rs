//! The operator's .deb (`scripts/package.sh --profile dev --no-build`): its files, its
//! control data and maintainer scripts (run against stand-in commands), and
//! `systemd-analyze verify` on the unit with the packaged paths.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test: failing loudly is the point

use crate::server_support::repo_root;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

fn run(cmd: &mut Command) -> Output {
    let shown = format!("{cmd:?}");
    let out = cmd.output().unwrap_or_else(|e| panic!("{shown} did not start: {e}"));
    assert!(out.status.success(), "{shown} failed ({}):\n{}\n{}", out.status, String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    out
}

fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The package, built once for all tests of this file; unpacked into a temp dir.
struct Unpacked {
    deb: PathBuf,
    root: tempfile::TempDir,
    control: tempfile::TempDir,
}

fn package() -> &'static Unpacked {
    static PKG: OnceLock<Unpacked> = OnceLock::new();
    PKG.get_or_init(|| {
        // The dev binary scripts/test.sh built before the tests (`cargo build -p
        // recon-companion`): no optimised build in CI, and no cargo build from
        // inside a test (its features differ from this test build's, so it
        // would rebuild the companion each time).
        let bin = repo_root().join("target/debug/recon-companion");
        assert!(bin.is_file(), "{} missing: `cargo build -p recon-companion` first (scripts/test.sh does)", bin.display());
        let out = run(Command::new(repo_root().join("scripts/package.sh")).args(["--profile", "dev", "--no-build"]).current_dir(repo_root()));
        let deb = PathBuf::from(text(&out).lines().last().expect("package.sh prints the .deb").trim());
        let deb = if deb.is_absolute() { deb } else { repo_root().join(deb) };
        assert!(deb.is_file(), "{} missing", deb.display());
        let name = deb.file_name().unwrap().to_string_lossy().into_owned();
        assert!(name.starts_with("recon-companion_") && name.ends_with(".deb"), "{name}");
        assert!(deb.starts_with(repo_root().join("target/debian")), "{}", deb.display());
        let root = tempfile::tempdir().unwrap();
        run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(root.path()));
        let control = tempfile::tempdir().unwrap();
        run(Command::new("dpkg-deb").arg("-e").arg(&deb).arg(control.path().join("DEBIAN")));
        Unpacked { deb, root, control }
    })
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn gunzip(p: &Path) -> String {
    text(&run(Command::new("gzip").arg("-dc").arg(p)))
}

#[test]
fn the_deb_holds_binary_unit_config_man_pages_and_completions() {
    let pkg = package();
    let r = pkg.root.path();
    let listing = text(&run(Command::new("dpkg-deb").arg("-c").arg(&pkg.deb)));
    for (path, mode) in [
        ("./usr/bin/recon-companion", "-rwxr-xr-x"),
        ("./usr/lib/systemd/system/recon-companion.service", "-rw-r--r--"),
        ("./etc/recon-companion/config.toml", "-rw-r-----"),
        ("./usr/share/man/man1/recon-companion.1.gz", "-rw-r--r--"),
        ("./usr/share/bash-completion/completions/recon-companion", "-rw-r--r--"),
        ("./usr/share/zsh/vendor-completions/_recon-companion", "-rw-r--r--"),
        ("./usr/share/fish/vendor_completions.d/recon-companion.fish", "-rw-r--r--"),
        ("./usr/share/recon-companion/grafana/recon-companion.json", "-rw-r--r--"),
        ("./usr/share/recon-companion/prometheus/recon-companion-alerts.yml", "-rw-r--r--"),
        ("./usr/share/doc/recon-companion/runbook.md", "-rw-r--r--"),
    ] {
        let line = listing.lines().find(|l| l.ends_with(&format!(" {path}"))).unwrap_or_else(|| panic!("{path} not in the .deb:\n{listing}"));
        assert!(line.starts_with(mode), "{path}: {line}");
        assert!(line.contains(" 0/0 ") || line.contains(" root/root "), "owned by root: {path}: {line}");
    }

    // The binary runs and is the companion.
    let help = text(&run(Command::new(r.join("usr/bin/recon-companion")).arg("--help")));
    assert!(help.contains("assign-categories") && help.contains("serve"), "{help}");
    assert!(!help.lines().any(|l| l.trim_start().starts_with("generate ")), "the packagers' subcommand stays hidden: {help}");

    // The example config, as /etc/recon-companion/config.toml (a conffile).
    assert_eq!(read(&r.join("etc/recon-companion/config.toml")), read(&repo_root().join("docs/recon-companion.example.toml")));
    let conffiles = read(&pkg.control.path().join("DEBIAN/conffiles"));
    assert!(conffiles.lines().any(|l| l == "/etc/recon-companion/config.toml"), "{conffiles}");

    // Man pages: the command's, and one per subcommand.
    let man = gunzip(&r.join("usr/share/man/man1/recon-companion.1.gz"));
    assert!(man.contains(".TH recon-companion 1") && man.contains("assign\\-categories"), "{man}");
    let sub = gunzip(&r.join("usr/share/man/man1/recon-companion-serve.1.gz"));
    assert!(sub.contains(".TH recon-companion-serve 1"), "{sub}");

    // Completions know the subcommands.
    assert!(read(&r.join("usr/share/bash-completion/completions/recon-companion")).contains("verify-qdrant"));
    assert!(read(&r.join("usr/share/zsh/vendor-completions/_recon-companion")).contains("#compdef recon-companion"));
    assert!(read(&r.join("usr/share/fish/vendor_completions.d/recon-companion.fish")).contains("complete -c recon-companion"));

    // The unit runs the packaged binary with the packaged config.
    let unit = read(&r.join("usr/lib/systemd/system/recon-companion.service"));
    assert!(unit.lines().any(|l| l == "ExecStart=/usr/bin/recon-companion --config /etc/recon-companion/config.toml serve"), "{unit}");
    assert!(unit.lines().any(|l| l == "User=recon"), "{unit}");
    assert!(!unit.contains("/usr/local/"), "{unit}");
}

#[test]
fn control_names_the_package_and_its_dependencies() {
    let pkg = package();
    let info = text(&run(Command::new("dpkg-deb").arg("-I").arg(&pkg.deb)));
    let field = |name: &str| info.lines().find_map(|l| l.trim().strip_prefix(&format!("{name}: "))).unwrap_or_else(|| panic!("no {name}:\n{info}")).to_string();
    assert_eq!(field("Package"), "recon-companion");
    assert_eq!(field("Architecture"), "amd64");
    assert!(field("Depends").contains("adduser"), "{info}");
    assert!(field("Depends").contains("libc6"), "$auto found the shared libraries: {info}");
    for script in ["postinst", "prerm", "postrm"] {
        let p = pkg.control.path().join("DEBIAN").join(script);
        let mode = std::fs::metadata(&p).unwrap_or_else(|e| panic!("{script}: {e}")).permissions().mode();
        assert_eq!(mode & 0o111, 0o111, "{script} must be executable");
        run(Command::new("sh").arg("-n").arg(&p));
    }
}

/// Stand-ins for the commands the maintainer scripts call: each logs its
/// arguments; `getent` answers from `known` (the users and groups that exist).
fn stub_bin(dir: &Path, known: &[&str]) -> PathBuf {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let log = dir.join("calls.log");
    for cmd in ["adduser", "addgroup", "useradd", "groupadd", "deluser", "delgroup", "userdel", "chown", "chmod", "systemctl"] {
        let p = bin.join(cmd);
        std::fs::write(&p, format!("#!/bin/sh\necho \"{cmd} $*\" >> '{}'\n", log.display())).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let getent = bin.join("getent");
    let cases: String = known.iter().map(|k| format!("  \"{k}\") exit 0 ;;\n")).collect();
    std::fs::write(&getent, format!("#!/bin/sh\ncase \"$1 $2\" in\n{cases}  *) exit 2 ;;\nesac\n")).unwrap();
    std::fs::set_permissions(&getent, std::fs::Permissions::from_mode(0o755)).unwrap();
    bin
}

fn run_script(script: &str, arg: &str, known: &[&str]) -> String {
    let pkg = package();
    let dir = tempfile::tempdir().unwrap();
    let bin = stub_bin(dir.path(), known);
    let path = format!("{}:/usr/bin:/bin", bin.display());
    run(Command::new("sh").arg(pkg.control.path().join("DEBIAN").join(script)).arg(arg).env("PATH", path));
    std::fs::read_to_string(dir.path().join("calls.log")).unwrap_or_default()
}

#[test]
fn postinst_creates_the_recon_user_only_when_absent_and_removal_keeps_it() {
    let fresh = run_script("postinst", "configure", &[]);
    assert!(fresh.contains("addgroup --system --quiet recon"), "{fresh}");
    let adduser = fresh.lines().find(|l| l.starts_with("adduser ")).unwrap_or_else(|| panic!("no adduser call:\n{fresh}"));
    assert!(adduser.contains("--system") && adduser.contains("--ingroup recon") && adduser.ends_with(" recon"), "{adduser}");
    assert!(fresh.contains("chown root:recon /etc/recon-companion /etc/recon-companion/config.toml"), "{fresh}");
    assert!(fresh.contains("chmod 0640 /etc/recon-companion/config.toml"), "{fresh}");

    let existing = run_script("postinst", "configure", &["passwd recon", "group recon"]);
    assert!(!existing.contains("adduser") && !existing.contains("addgroup"), "an existing recon user is left alone:\n{existing}");
    assert!(existing.contains("chown root:recon"), "{existing}");

    for (script, arg) in [("prerm", "remove"), ("postrm", "remove"), ("postrm", "purge")] {
        let calls = run_script(script, arg, &["passwd recon", "group recon"]);
        for never in ["deluser", "delgroup", "userdel"] {
            assert!(!calls.contains(never), "{script} {arg} must keep the user:\n{calls}");
        }
    }
}

/// `systemd-analyze verify --root=ROOT UNIT`: (success, stderr).
fn verify_in(root: &Path) -> (bool, String) {
    // The units every service depends on (sysinit.target, …), from this machine:
    // verify resolves them in the root too.
    let units = root.join("usr/lib/systemd/system");
    for dir in ["/usr/lib/systemd/system", "/lib/systemd/system"] {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = e.path();
            if p.extension().is_some_and(|x| x == "target") && p.is_file() && !units.join(e.file_name()).exists() {
                std::fs::copy(&p, units.join(e.file_name())).unwrap();
            }
        }
    }
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg("--man=no")
        .arg(format!("--root={}", root.display()))
        .arg(units.join("recon-companion.service"))
        .output()
        .unwrap_or_else(|e| panic!("systemd-analyze not runnable ({e}): scripts/setup.sh --test installs it (package systemd)"));
    (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn systemd_analyze_accepts_the_packaged_unit() {
    let pkg = package();
    // The packaged unit names /usr/bin/recon-companion; --root makes systemd
    // resolve it (and the unit search path) inside the unpacked package.
    let (ok, err) = verify_in(pkg.root.path());
    assert!(ok, "systemd-analyze verify failed:\n{err}");
    let findings: Vec<&str> = err.lines().filter(|l| l.contains("recon-companion")).collect();
    assert!(findings.is_empty(), "systemd-analyze complained about the unit:\n{err}");

    // The check looks where the package puts things: without the binary it fails.
    let bare = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(bare.path().join("usr/lib/systemd/system")).unwrap();
    let unit = "usr/lib/systemd/system/recon-companion.service";
    std::fs::copy(pkg.root.path().join(unit), bare.path().join(unit)).unwrap();
    let (ok, err) = verify_in(bare.path());
    assert!(!ok && err.contains("/usr/bin/recon-companion is not executable"), "{err}");
}
