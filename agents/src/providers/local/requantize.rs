//! The Q8_0 copy of a GGUF: candle has no fast kernels for Q5 tensors, so they are
//! re-quantised once and the copy is cached beside the original.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use candle_core::Device;
use candle_core::quantized::{GgmlDType, QTensor, gguf_file};

use super::local_err;
use crate::error::ProviderError;

/// The cached copy of `model` with slow-kernel tensors re-quantised to Q8_0.
pub fn requantized_path(model: &Path) -> PathBuf {
    let mut name = model.file_name().unwrap_or_default().to_os_string();
    name.push(".q8_0.gguf");
    model.with_file_name(name)
}

/// candle has no fast Q5 kernels; Q8_0 runs ~4× faster with the same greedy output.
fn needs_requant(dtype: GgmlDType) -> bool {
    matches!(dtype, GgmlDType::Q5_0 | GgmlDType::Q5_1)
}

/// Writes the re-quantised copy once; returns the file to load.
pub fn ensure_requantized(model: &Path) -> Result<PathBuf, ProviderError> {
    let cached = requantized_path(model);
    if cached.exists() {
        return Ok(cached);
    }
    let mut reader = std::fs::File::open(model)
        .map_err(|e| local_err(format!("opening {}: {e}", model.display())))?;
    let content = gguf_file::Content::read(&mut reader).map_err(local_err)?;
    if !content
        .tensor_infos
        .values()
        .any(|t| needs_requant(t.ggml_dtype))
    {
        return Ok(model.to_path_buf());
    }
    let mut tensors: Vec<(String, QTensor)> = Vec::with_capacity(content.tensor_infos.len());
    let mut names: Vec<&String> = content.tensor_infos.keys().collect();
    names.sort();
    for name in names {
        let tensor = content
            .tensor(&mut reader, name, &Device::Cpu)
            .map_err(local_err)?;
        let tensor = if needs_requant(tensor.dtype()) {
            let dense = tensor.dequantize(&Device::Cpu).map_err(local_err)?;
            QTensor::quantize(&dense, GgmlDType::Q8_0).map_err(local_err)?
        } else {
            tensor
        };
        tensors.push((name.clone(), tensor));
    }
    let metadata: Vec<(&str, &gguf_file::Value)> = content
        .metadata
        .iter()
        .map(|(k, v)| (k.as_str(), v))
        .collect();
    let tensor_refs: Vec<(&str, &QTensor)> = tensors.iter().map(|(n, t)| (n.as_str(), t)).collect();
    // Write beside the target and rename, so a crash never leaves a half-written cache; the
    // name is this writer's own, as several processes may load the model for the first time
    // at once (the last rename wins, with the same bytes).
    static WRITERS: AtomicU64 = AtomicU64::new(0);
    let partial = cached.with_extension(format!(
        "partial.{}.{}",
        std::process::id(),
        WRITERS.fetch_add(1, Ordering::Relaxed)
    ));
    let mut out = std::io::BufWriter::new(std::fs::File::create(&partial).map_err(local_err)?);
    gguf_file::write(&mut out, &metadata, &tensor_refs).map_err(local_err)?;
    std::io::Write::flush(&mut out).map_err(local_err)?;
    drop(out);
    std::fs::rename(&partial, &cached).map_err(local_err)?;
    Ok(cached)
}
