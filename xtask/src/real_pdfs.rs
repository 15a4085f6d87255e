//! Real PDFs for the knowledge benchmark: manuals the project did not write, from Debian's
//! archive (`apt-get download` + `dpkg-deb -x`, nothing installed system-wide), pinned by
//! version and checked by SHA-256.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};
use sha2::{Digest, Sha256};

/// SuiteSparse's LaTeX manuals (pdfTeX, ligatures, hyphenation, ruled tables).
const PACKAGE: &str = "libsuitesparse-doc";
const VERSION: &str = "1:5.12.0+dfsg-2";
const DOC_DIR: &str = "usr/share/doc/libsuitesparse-dev";

/// (file, pages, sha256 of the file)
pub const MANUALS: &[(&str, u32, &str)] = &[
    (
        "SLIP_LU_UserGuide.pdf",
        38,
        "1dc5812d4673971a92db6ad29401d9a69d8927fbfc327bb6a128b2d340274077",
    ),
    (
        "AMD_UserGuide.pdf",
        18,
        "25dccc0fc4824104bd87fba726d963f3aea9cf2abe978af1882ef8bf61ab39c6",
    ),
];

/// The manuals' paths under `dir`, downloading and unpacking the package the first time.
pub fn ensure(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let root = dir.join("root");
    let doc = root.join(DOC_DIR);
    let paths: Vec<PathBuf> = MANUALS.iter().map(|(file, ..)| doc.join(file)).collect();
    if !paths.iter().all(|p| p.is_file()) {
        println!(
            "bench: fetching real PDF manuals ({PACKAGE} {VERSION}) from Debian (first run only)"
        );
        std::fs::create_dir_all(dir)?;
        // apt drops privileges to `_apt` for downloads; let it write here.
        let _ = Command::new("chmod").arg("777").arg(dir).status();
        let status = Command::new("apt-get")
            .args(["download", "-qq", &format!("{PACKAGE}={VERSION}")])
            .current_dir(dir)
            .status()
            .context("running apt-get download")?;
        if !status.success() {
            bail!("apt-get download {PACKAGE}={VERSION} failed (try `apt-get update`)");
        }
        let deb = std::fs::read_dir(dir)?
            .flatten()
            .map(|e| e.path())
            .find(|p| {
                p.file_name().is_some_and(|n| {
                    n.to_string_lossy().starts_with(PACKAGE)
                        && n.to_string_lossy().ends_with(".deb")
                })
            })
            .context("the downloaded .deb is missing")?;
        let status = Command::new("dpkg-deb")
            .arg("-x")
            .arg(&deb)
            .arg(&root)
            .status()
            .context("running dpkg-deb")?;
        if !status.success() {
            bail!("dpkg-deb -x {} failed", deb.display());
        }
    }
    for ((file, _, sha), path) in MANUALS.iter().zip(&paths) {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let digest: String = Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        if digest != *sha {
            bail!("{file} has sha256 {digest}, expected {sha}");
        }
    }
    Ok(paths)
}
