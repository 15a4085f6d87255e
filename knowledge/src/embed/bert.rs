//! A BERT encoder for CPU inference, written for sentence embedding: sequences are packed
//! without padding (every dense layer runs on real tokens only, attention runs per sequence
//! on its own length), the large matrix products go to candle's gemm, and the element-wise
//! work (embedding sums, layer norms, GELU, softmax) runs in fused loops over reused rows.

use std::collections::HashMap;

use candle_core::{Device, Tensor};
use rayon::prelude::*;

use crate::error::EmbedError;

fn model_err(e: impl std::fmt::Display) -> EmbedError {
    EmbedError::Model(e.to_string())
}

/// The shape of the network (read from the model's `config.json`).
#[derive(Clone, Copy, Debug, serde::Deserialize)]
pub struct BertShape {
    pub hidden_size: usize,
    pub num_attention_heads: usize,
    pub num_hidden_layers: usize,
    pub intermediate_size: usize,
    pub max_position_embeddings: usize,
    #[serde(default = "default_eps")]
    pub layer_norm_eps: f64,
}

fn default_eps() -> f64 {
    1e-12
}

struct Norm {
    gamma: Vec<f32>,
    beta: Vec<f32>,
}

/// `x·W + b` with `W` kept as `[in, out]` so the product is one gemm call.
struct Linear {
    weight: Tensor,
    bias: Vec<f32>,
    out: usize,
}

struct Layer {
    qkv: Linear,
    attention_out: Linear,
    attention_norm: Norm,
    up: Linear,
    down: Linear,
    output_norm: Norm,
}

pub struct BertEncoder {
    shape: BertShape,
    word: Vec<f32>,
    /// Position embeddings with the token-type-0 embedding already added (single-segment
    /// inputs only ever use type 0).
    position: Vec<f32>,
    embedding_norm: Norm,
    layers: Vec<Layer>,
}

struct Weights {
    tensors: HashMap<String, Tensor>,
    prefix: &'static str,
}

impl Weights {
    fn get(&self, name: &str) -> Result<&Tensor, EmbedError> {
        let full = format!("{}{name}", self.prefix);
        self.tensors
            .get(&full)
            .ok_or_else(|| EmbedError::Model(format!("weights lack {full}")))
    }

    fn vec(&self, name: &str, len: usize) -> Result<Vec<f32>, EmbedError> {
        let values = self
            .get(name)?
            .flatten_all()
            .and_then(|t| t.to_vec1::<f32>())
            .map_err(model_err)?;
        if values.len() != len {
            return Err(EmbedError::Model(format!(
                "{name} has {} values, expected {len}",
                values.len()
            )));
        }
        Ok(values)
    }

    fn norm(&self, name: &str, hidden: usize) -> Result<Norm, EmbedError> {
        Ok(Norm {
            gamma: self.vec(&format!("{name}.weight"), hidden)?,
            beta: self.vec(&format!("{name}.bias"), hidden)?,
        })
    }

    /// PyTorch stores linear weights as `[out, in]`; several of them may be stacked along
    /// `out` (query, key and value become one projection).
    fn linear(&self, names: &[String], inputs: usize) -> Result<Linear, EmbedError> {
        let mut weights = Vec::with_capacity(names.len());
        let mut bias = Vec::new();
        for name in names {
            let w = self.get(&format!("{name}.weight"))?;
            let dims = w.dims();
            if dims.len() != 2 || dims[1] != inputs {
                return Err(EmbedError::Model(format!(
                    "{name}.weight has shape {dims:?}"
                )));
            }
            weights.push(w.clone());
            bias.extend(self.vec(&format!("{name}.bias"), dims[0])?);
        }
        let stacked = Tensor::cat(&weights, 0)
            .and_then(|w| w.t())
            .and_then(|w| w.contiguous())
            .map_err(model_err)?;
        let out = stacked.dims()[1];
        Ok(Linear {
            weight: stacked,
            bias,
            out,
        })
    }
}

impl BertEncoder {
    /// From the tensors of a `model.safetensors` (with or without a `bert.` prefix).
    pub fn new(tensors: HashMap<String, Tensor>, shape: BertShape) -> Result<Self, EmbedError> {
        let prefix = if tensors.contains_key("bert.embeddings.word_embeddings.weight") {
            "bert."
        } else {
            ""
        };
        let w = Weights { tensors, prefix };
        let h = shape.hidden_size;
        if shape.num_attention_heads == 0 || !h.is_multiple_of(shape.num_attention_heads) {
            return Err(EmbedError::Model(format!(
                "hidden size {h} does not split into {} heads",
                shape.num_attention_heads
            )));
        }
        let word = w.vec(
            "embeddings.word_embeddings.weight",
            w.get("embeddings.word_embeddings.weight")?.elem_count(),
        )?;
        if !word.len().is_multiple_of(h) {
            return Err(EmbedError::Model(
                "word embeddings do not match the hidden size".into(),
            ));
        }
        let mut position = w.vec(
            "embeddings.position_embeddings.weight",
            shape.max_position_embeddings * h,
        )?;
        let token_type = w.vec(
            "embeddings.token_type_embeddings.weight",
            w.get("embeddings.token_type_embeddings.weight")?
                .elem_count(),
        )?;
        let type0 = token_type
            .get(..h)
            .ok_or_else(|| EmbedError::Model("no token type embedding".into()))?;
        for row in position.chunks_exact_mut(h) {
            row.iter_mut().zip(type0).for_each(|(p, t)| *p += t);
        }
        let embedding_norm = w.norm("embeddings.LayerNorm", h)?;
        let layers = (0..shape.num_hidden_layers)
            .map(|i| {
                let at = |s: &str| format!("encoder.layer.{i}.{s}");
                Ok(Layer {
                    qkv: w.linear(
                        &[
                            at("attention.self.query"),
                            at("attention.self.key"),
                            at("attention.self.value"),
                        ],
                        h,
                    )?,
                    attention_out: w.linear(&[at("attention.output.dense")], h)?,
                    attention_norm: w.norm(&at("attention.output.LayerNorm"), h)?,
                    up: w.linear(&[at("intermediate.dense")], h)?,
                    down: w.linear(&[at("output.dense")], shape.intermediate_size)?,
                    output_norm: w.norm(&at("output.LayerNorm"), h)?,
                })
            })
            .collect::<Result<Vec<_>, EmbedError>>()?;
        Ok(Self {
            shape,
            word,
            position,
            embedding_norm,
            layers,
        })
    }

    /// Mean-pooled, L2-normalised sentence vectors for already tokenized sequences (each at
    /// most `max_position_embeddings` long).
    pub fn embed(&self, sequences: &[&[u32]]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let h = self.shape.hidden_size;
        let mut offsets = Vec::with_capacity(sequences.len());
        let mut total = 0usize;
        for seq in sequences {
            if seq.is_empty() || seq.len() > self.shape.max_position_embeddings {
                return Err(EmbedError::Model(format!(
                    "a sequence of {} tokens (1 to {} allowed)",
                    seq.len(),
                    self.shape.max_position_embeddings
                )));
            }
            offsets.push((total, seq.len()));
            total += seq.len();
        }
        let vocab = self.word.len() / h;
        let mut x = vec![0f32; total * h];
        let eps = self.shape.layer_norm_eps as f32;
        let ids: Vec<(u32, usize)> = sequences
            .iter()
            .flat_map(|seq| seq.iter().enumerate().map(|(p, &id)| (id, p)))
            .collect();
        if let Some((bad, _)) = ids.iter().find(|(id, _)| *id as usize >= vocab) {
            return Err(EmbedError::Model(format!(
                "token id {bad} outside the vocabulary"
            )));
        }
        x.par_chunks_mut(h)
            .zip(ids.par_iter())
            .for_each(|(row, &(id, p))| {
                let word = &self.word[id as usize * h..][..h];
                let position = &self.position[p * h..][..h];
                for ((r, w), q) in row.iter_mut().zip(word).zip(position) {
                    *r = w + q;
                }
                layer_norm(row, &self.embedding_norm, eps);
            });
        for layer in &self.layers {
            x = self.layer(layer, x, total, &offsets)?;
        }
        Ok(offsets
            .iter()
            .map(|&(start, len)| {
                let mut mean = vec![0f32; h];
                for row in x[start * h..(start + len) * h].chunks_exact(h) {
                    mean.iter_mut().zip(row).for_each(|(m, v)| *m += v);
                }
                let norm = mean.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
                // Mean then normalise: the 1/len factor cancels in the normalisation.
                mean.iter_mut().for_each(|v| *v /= norm);
                mean
            })
            .collect())
    }

    fn layer(
        &self,
        layer: &Layer,
        x: Vec<f32>,
        total: usize,
        offsets: &[(usize, usize)],
    ) -> Result<Vec<f32>, EmbedError> {
        let h = self.shape.hidden_size;
        let heads = self.shape.num_attention_heads;
        let eps = self.shape.layer_norm_eps as f32;
        let qkv = matmul(&x, total, &layer.qkv)?;
        let contexts = offsets
            .par_iter()
            .map(|&(start, len)| {
                attention(&qkv[start * 3 * h..(start + len) * 3 * h], len, h, heads)
            })
            .collect::<Result<Vec<_>, EmbedError>>()?;
        let context: Vec<f32> = contexts.concat();
        let attended = matmul(&context, total, &layer.attention_out)?;
        let mut x = x;
        x.par_chunks_mut(h)
            .zip(attended.par_chunks(h))
            .for_each(|(row, add)| {
                row.iter_mut().zip(add).for_each(|(r, a)| *r += a);
                layer_norm(row, &layer.attention_norm, eps);
            });
        let mut up = matmul(&x, total, &layer.up)?;
        up.par_chunks_mut(4096)
            .for_each(|chunk| chunk.iter_mut().for_each(|v| *v = gelu(*v)));
        let down = matmul(&up, total, &layer.down)?;
        x.par_chunks_mut(h)
            .zip(down.par_chunks(h))
            .for_each(|(row, add)| {
                row.iter_mut().zip(add).for_each(|(r, a)| *r += a);
                layer_norm(row, &layer.output_norm, eps);
            });
        Ok(x)
    }
}

/// `rows × in` times the layer's `in × out`, plus the bias on every row.
fn matmul(input: &[f32], rows: usize, linear: &Linear) -> Result<Vec<f32>, EmbedError> {
    let inputs = input.len() / rows.max(1);
    let lhs = Tensor::from_slice(input, (rows, inputs), &Device::Cpu).map_err(model_err)?;
    let mut out = lhs
        .matmul(&linear.weight)
        .and_then(|t| t.flatten_all())
        .and_then(|t| t.to_vec1::<f32>())
        .map_err(model_err)?;
    out.par_chunks_mut(linear.out).for_each(|row| {
        row.iter_mut().zip(&linear.bias).for_each(|(v, b)| *v += b);
    });
    Ok(out)
}

/// Self-attention of one sequence: `qkv` holds `len` rows of `[q | k | v]`; returns `len`
/// rows of the heads' contexts side by side.
fn attention(qkv: &[f32], len: usize, hidden: usize, heads: usize) -> Result<Vec<f32>, EmbedError> {
    let d = hidden / heads;
    // Head-major copies: [heads, len, d] for q, k and v.
    let mut split = vec![0f32; 3 * hidden * len];
    for (t, row) in qkv.chunks_exact(3 * hidden).enumerate() {
        for part in 0..3 {
            for head in 0..heads {
                let from = &row[part * hidden + head * d..][..d];
                let to = ((part * heads + head) * len + t) * d;
                split[to..to + d].copy_from_slice(from);
            }
        }
    }
    let block = heads * len * d;
    let tensor = |part: usize| {
        Tensor::from_slice(
            &split[part * block..(part + 1) * block],
            (heads, len, d),
            &Device::Cpu,
        )
    };
    let (q, k, v) = (
        tensor(0).map_err(model_err)?,
        tensor(1).map_err(model_err)?,
        tensor(2).map_err(model_err)?,
    );
    let mut scores = q
        .matmul(&k.t().map_err(model_err)?)
        .and_then(|t| t.flatten_all())
        .and_then(|t| t.to_vec1::<f32>())
        .map_err(model_err)?;
    let scale = 1.0 / (d as f32).sqrt();
    for row in scores.chunks_exact_mut(len) {
        softmax(row, scale);
    }
    let probs = Tensor::from_vec(scores, (heads, len, len), &Device::Cpu).map_err(model_err)?;
    let context = probs
        .matmul(&v)
        .and_then(|t| t.flatten_all())
        .and_then(|t| t.to_vec1::<f32>())
        .map_err(model_err)?;
    // Back to token-major rows with the heads side by side.
    let mut out = vec![0f32; len * hidden];
    for head in 0..heads {
        for t in 0..len {
            let from = &context[(head * len + t) * d..][..d];
            out[t * hidden + head * d..][..d].copy_from_slice(from);
        }
    }
    Ok(out)
}

fn layer_norm(row: &mut [f32], norm: &Norm, eps: f32) {
    let n = row.len() as f32;
    let mean = sum(row) / n;
    row.iter_mut().for_each(|v| *v -= mean);
    let var = sum_squares(row) / n;
    let inv = 1.0 / (var + eps).sqrt();
    for ((v, g), b) in row.iter_mut().zip(&norm.gamma).zip(&norm.beta) {
        *v = *v * inv * g + b;
    }
}

/// Sums with eight independent accumulators: float addition is not associative, so a
/// single running sum cannot be vectorised.
fn sum(xs: &[f32]) -> f32 {
    let mut lanes = [0f32; 8];
    let mut chunks = xs.chunks_exact(8);
    for chunk in &mut chunks {
        lanes.iter_mut().zip(chunk).for_each(|(l, v)| *l += v);
    }
    lanes.iter().sum::<f32>() + chunks.remainder().iter().sum::<f32>()
}

fn sum_squares(xs: &[f32]) -> f32 {
    let mut lanes = [0f32; 8];
    let mut chunks = xs.chunks_exact(8);
    for chunk in &mut chunks {
        lanes.iter_mut().zip(chunk).for_each(|(l, v)| *l += v * v);
    }
    lanes.iter().sum::<f32>() + chunks.remainder().iter().map(|v| v * v).sum::<f32>()
}

fn max(xs: &[f32]) -> f32 {
    let mut lanes = [f32::NEG_INFINITY; 8];
    let mut chunks = xs.chunks_exact(8);
    for chunk in &mut chunks {
        lanes
            .iter_mut()
            .zip(chunk)
            .for_each(|(l, v)| *l = if *v > *l { *v } else { *l });
    }
    lanes
        .iter()
        .chain(chunks.remainder())
        .fold(f32::NEG_INFINITY, |m, v| if *v > m { *v } else { m })
}

/// `softmax(scale · row)` in place.
fn softmax(row: &mut [f32], scale: f32) {
    let shift = max(row) * scale;
    row.iter_mut().for_each(|v| *v = exp(*v * scale - shift));
    let inv = 1.0 / sum(row);
    row.iter_mut().for_each(|v| *v *= inv);
}

/// `eˣ` in straight-line arithmetic (so loops over it vectorise): `2^n · e^f` with
/// `n = round(x·log₂e)`, `e^f` from its Taylor series on `|f| ≤ ln2/2` (relative error
/// about 2e-7).
#[inline(always)]
fn exp(x: f32) -> f32 {
    let y = (x * std::f32::consts::LOG2_E).clamp(-126.0, 126.0);
    // Round to nearest by adding and removing 1.5·2²³ (exact for |y| < 2²²), instead of
    // `round`, which is a library call that stops the loop from vectorising.
    const SHIFT: f32 = 12_582_912.0;
    let shifted = y + SHIFT;
    let n = shifted - SHIFT;
    // The low bits of `shifted` hold n in two's complement; integer ops keep it vectorised
    // (a float-to-int cast saturates, which costs branches).
    let k = shifted.to_bits().wrapping_sub(SHIFT.to_bits());
    // f = x − n·ln2 with ln2 split in two (Cody–Waite), so no precision is lost for large |x|.
    let f = (x - n * 0.693_145_75) - n * 1.428_606_8e-6;
    // e^f for |f| ≤ ln2/2, Horner form of Σ fᵏ/k! up to k = 7.
    let p = 1.0
        + f * (1.0
            + f * (0.5
                + f * (1.0 / 6.0
                    + f * (1.0 / 24.0 + f * (1.0 / 120.0 + f * (1.0 / 720.0 + f / 5040.0))))));
    // n is an integer in [-126, 126]: 2^n is a float with exponent bits n + 127.
    p * f32::from_bits(k.wrapping_add(127) << 23)
}

/// The exact (erf) GELU, `x·Φ(x)`, with erf from Abramowitz & Stegun 7.1.26 (absolute error
/// below 1.5e-7), branch-free so the loop vectorises.
#[inline(always)]
fn gelu(x: f32) -> f32 {
    let z = x * std::f32::consts::FRAC_1_SQRT_2;
    let a = z.abs();
    let t = 1.0 / (1.0 + 0.327_591_1 * a);
    let poly = t
        * (0.254_829_6
            + t * (-0.284_496_74 + t * (1.421_413_7 + t * (-1.453_152_1 + t * 1.061_405_4))));
    let erf_abs = 1.0 - poly * exp(-a * a);
    let erf = erf_abs.copysign(z);
    0.5 * x * (1.0 + erf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_matches_std_within_a_few_ulp() {
        for i in -2000..=2000 {
            let x = i as f32 * 0.04;
            let (ours, std) = (exp(x), x.exp());
            assert!(
                ((ours - std) / std).abs() < 1e-6,
                "exp({x}): {ours} vs {std}"
            );
        }
    }

    #[test]
    fn gelu_matches_the_erf_definition() {
        for i in -1000..=1000 {
            let x = i as f64 * 0.01;
            let exact = 0.5 * x * (1.0 + libm_erf(x / std::f64::consts::SQRT_2));
            let ours = f64::from(gelu(x as f32));
            assert!((ours - exact).abs() < 1e-6, "gelu({x}): {ours} vs {exact}");
        }
    }

    /// erf as 2/√π ∫₀ˣ e^(−t²) dt by Simpson's rule in f64 (error far below 1e-9 here).
    fn libm_erf(x: f64) -> f64 {
        let steps = 20_000;
        let h = x / f64::from(steps);
        let f = |t: f64| (-t * t).exp();
        let inner: f64 = (1..steps)
            .map(|i| f64::from(if i % 2 == 1 { 4 } else { 2 }) * f(f64::from(i) * h))
            .sum();
        (f(0.0) + inner + f(x)) * h / 3.0 * 2.0 / std::f64::consts::PI.sqrt()
    }

    #[test]
    fn softmax_sums_to_one_and_keeps_order() {
        let mut row = vec![1.0, 2.0, 3.0, -50.0];
        softmax(&mut row, 1.0);
        assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert!(row[2] > row[1] && row[1] > row[0] && row[3] < 1e-20);
    }
}
