//! Qwen2's forward pass over GGUF weights, with a key/value cache the caller owns, so a
//! prompt that starts like the previous one only runs its new tokens.
//!
//! The architecture is the one candle's `quantized_qwen2` implements (RMSNorm, rotary
//! embeddings on the first and second halves of each head, grouped-query attention with
//! biased q/k/v projections, a SiLU-gated MLP); with [`Kernels::Stored`] the greedy output
//! is the same as candle's. What differs: the cache is ours; the query heads of a group read
//! their shared key/value head in place instead of from copies, one per query head; and
//! [`Kernels::Fast`] runs the products on candle's repacked kernels (see [`Linear`]).

use std::io::{Read, Seek};

use candle_core::quantized::{GgmlDType, QMatMul, QTensor, gguf_file};
use candle_core::{D, DType, Device, Module, Result, Tensor, bail};
use candle_nn::ops::{rms_norm, softmax_last_dim};
use candle_nn::rotary_emb::rope_thd;
use rayon::prelude::*;

/// Tokens of cache space added at a time; growing copies what is cached.
const CACHE_CHUNK: usize = 512;

/// The model's shape, from the GGUF metadata.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Shape {
    n_blocks: usize,
    n_head: usize,
    n_kv_head: usize,
    head_dim: usize,
    context_length: usize,
}

/// candle's fastest CPU kernels (AVX-512 VNNI / AVX-VNNI over weights repacked into tiles)
/// only take inputs whose width is a whole number of 256-value superblocks.
const SUPERBLOCK: usize = 256;

/// A quantised weight, `[out, in]`, widened with zero columns when that lets candle run it
/// through its repacked kernels: Qwen2.5-0.5B's width of 896 is not a multiple of 256, and
/// padded to 1024 its Q8_0 products over a prompt run ~5× faster than on the generic kernel
/// (prompt processing ~2.5× end to end; one-token decode steps are bound by memory either
/// way). The zero columns meet zero inputs, so the product is the same sum; what changes is
/// that the kernel quantises the input per 256 values instead of per 32, which costs a
/// little accuracy (measured in the tests against exact f32 products).
struct Linear {
    weight: QMatMul,
    /// Zeros appended to the input.
    pad: usize,
}

/// How the weights' products are computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kernels {
    /// The repacked kernels wherever padding makes them apply (see [`Linear`]).
    Fast,
    /// candle's kernels for the weights as stored: what `quantized_qwen2` computes.
    Stored,
    /// Dequantised f32 weights and exact f32 products: the reference the quantised
    /// products approximate (tests only; four times the memory).
    #[cfg(test)]
    Dense,
}

impl Linear {
    fn new(weight: QTensor, kernels: Kernels) -> Result<Self> {
        let (_, width) = weight.shape().dims2()?;
        let pad = width.next_multiple_of(SUPERBLOCK) - width;
        #[cfg(test)]
        if kernels == Kernels::Dense {
            return Ok(Self {
                weight: QMatMul::Tensor(weight.dequantize(&Device::Cpu)?),
                pad: 0,
            });
        }
        if kernels == Kernels::Stored
            || pad == 0
            || weight.dtype() != GgmlDType::Q8_0
            || !repacked_kernels()
        {
            return Ok(Self {
                weight: QMatMul::from_qtensor(weight)?,
                pad: 0,
            });
        }
        // Q8_0 → f32 → Q8_0 gives back the same blocks: every block's largest value is
        // exactly 127 × its scale.
        let dense = weight.dequantize(&Device::Cpu)?.pad_with_zeros(1, 0, pad)?;
        Ok(Self {
            weight: QMatMul::from_qtensor(QTensor::quantize(&dense, GgmlDType::Q8_0)?)?,
            pad,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.weight.forward(&widen(x, self.pad)?)
    }
}

/// `x` with `pad` zeros after its last dimension.
fn widen(x: &Tensor, pad: usize) -> Result<Tensor> {
    if pad == 0 {
        Ok(x.clone())
    } else {
        x.pad_with_zeros(D::Minus1, 0, pad)
    }
}

/// Products of several weights with the same input (q/k/v, gate/up): one quantisation of
/// the input and one parallel region when candle can fuse them, one by one otherwise.
fn forward_shared<const N: usize>(weights: [&Linear; N], x: &Tensor) -> Result<[Tensor; N]> {
    let pad = weights[0].pad;
    if weights.iter().all(|w| w.pad == pad) {
        let x = widen(x, pad)?;
        let quantised: Option<Vec<&QTensor>> = weights
            .iter()
            .map(|w| match &w.weight {
                QMatMul::QTensor(t) => Some(t.as_ref()),
                _ => None,
            })
            .collect();
        if let Some(quantised) = quantised
            && let Some(out) = QTensor::gemv_fused_shared_lhs(&quantised, &x)?
            && let Ok(out) = <[Tensor; N]>::try_from(out)
        {
            return Ok(out);
        }
    }
    let mut out = Vec::with_capacity(N);
    for w in weights {
        out.push(w.forward(x)?);
    }
    <[Tensor; N]>::try_from(out).map_err(|_| candle_core::Error::Msg("projection count".into()))
}

/// Whether candle 0.11's repacked x86 kernels run Q8_0 here (they need 8-bit dot products
/// with a true unsigned × signed accumulate).
fn repacked_kernels() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        (is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512vnni"))
            || (is_x86_feature_detected!("avxvnni") && is_x86_feature_detected!("avx2"))
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// A block's tensors as the GGUF stores them.
struct StoredBlock {
    attn_norm: QTensor,
    q: QTensor,
    q_bias: QTensor,
    k: QTensor,
    k_bias: QTensor,
    v: QTensor,
    v_bias: QTensor,
    out: QTensor,
    ffn_norm: QTensor,
    gate: QTensor,
    up: QTensor,
    down: QTensor,
}

impl StoredBlock {
    fn prepare(self, kernels: Kernels) -> Result<Block> {
        let dense = |t: QTensor| t.dequantize(&Device::Cpu);
        Ok(Block {
            attn_norm: dense(self.attn_norm)?,
            q: Linear::new(self.q, kernels)?,
            q_bias: dense(self.q_bias)?,
            k: Linear::new(self.k, kernels)?,
            k_bias: dense(self.k_bias)?,
            v: Linear::new(self.v, kernels)?,
            v_bias: dense(self.v_bias)?,
            out: Linear::new(self.out, kernels)?,
            ffn_norm: dense(self.ffn_norm)?,
            gate: Linear::new(self.gate, kernels)?,
            up: Linear::new(self.up, kernels)?,
            down: Linear::new(self.down, kernels)?,
        })
    }
}

struct Block {
    attn_norm: Tensor,
    q: Linear,
    q_bias: Tensor,
    k: Linear,
    k_bias: Tensor,
    v: Linear,
    v_bias: Tensor,
    out: Linear,
    ffn_norm: Tensor,
    gate: Linear,
    up: Linear,
    down: Linear,
}

/// The weights: immutable once loaded, shared by every cache.
pub struct Qwen2 {
    /// Looked up row by row in its quantised form (no dense copy of a 150k-row table).
    embeddings: QTensor,
    blocks: Vec<Block>,
    norm: Tensor,
    output: Linear,
    /// `[context_length, head_dim / 2]` rotary tables.
    cos: Tensor,
    sin: Tensor,
    eps: f32,
    shape: Shape,
}

/// Keys and values of the tokens seen so far, per block, with room to append.
pub struct KvCache {
    blocks: Vec<BlockKv>,
    capacity: usize,
    len: usize,
    shape: Shape,
}

/// One block's cache. Keys are stored transposed, `[kv_head, dim, capacity]`, so that the
/// scores `q · kᵀ` read a row-major right-hand side (candle's matmul is several times slower
/// on a transposed one); values token-major, `[capacity, kv_head, dim]`, which the second
/// product reads as it is.
struct BlockKv {
    keys_t: Tensor,
    values: Tensor,
}

impl BlockKv {
    fn new(shape: &Shape, capacity: usize) -> Result<Self> {
        let (heads, dim) = (shape.n_kv_head, shape.head_dim);
        Ok(Self {
            keys_t: Tensor::zeros((heads, dim, capacity), DType::F32, &Device::Cpu)?,
            values: Tensor::zeros((capacity, heads, dim), DType::F32, &Device::Cpu)?,
        })
    }

    /// Writes `keys` and `values` (`[seq, kv_head, dim]`) at `past`; returns the cached
    /// keys as `[kv_head, dim, past + seq]` and values as `[kv_head, past + seq, dim]`.
    fn append(&self, past: usize, keys: &Tensor, values: &Tensor) -> Result<(Tensor, Tensor)> {
        let seq = keys.dim(0)?;
        self.keys_t
            .slice_set(&keys.permute((1, 2, 0))?.contiguous()?, 2, past)?;
        self.values.slice_set(values, 0, past)?;
        Ok((
            self.keys_t.narrow(2, 0, past + seq)?,
            self.values.narrow(0, 0, past + seq)?.transpose(0, 1)?,
        ))
    }

    /// A copy of the first `len` tokens in a cache of `capacity`.
    fn grown(&self, shape: &Shape, len: usize, capacity: usize) -> Result<Self> {
        let grown = Self::new(shape, capacity)?;
        if len > 0 {
            grown
                .keys_t
                .slice_set(&self.keys_t.narrow(2, 0, len)?.contiguous()?, 2, 0)?;
            grown
                .values
                .slice_set(&self.values.narrow(0, 0, len)?.contiguous()?, 0, 0)?;
        }
        Ok(grown)
    }
}

impl KvCache {
    /// Tokens cached.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Forgets everything after the first `len` tokens (their slots are overwritten later).
    pub fn truncate(&mut self, len: usize) {
        self.len = self.len.min(len);
    }

    /// Room for `needed` tokens, copying what is cached into larger buffers if need be.
    fn reserve(&mut self, needed: usize) -> Result<()> {
        if needed <= self.capacity && self.blocks.len() == self.shape.n_blocks {
            return Ok(());
        }
        let capacity = needed
            .max(self.capacity * 2)
            .next_multiple_of(CACHE_CHUNK)
            .min(self.shape.context_length.max(needed));
        self.blocks = if self.blocks.len() == self.shape.n_blocks {
            self.blocks
                .iter()
                .map(|b| b.grown(&self.shape, self.len, capacity))
                .collect::<Result<_>>()?
        } else {
            self.len = 0;
            (0..self.shape.n_blocks)
                .map(|_| BlockKv::new(&self.shape, capacity))
                .collect::<Result<_>>()?
        };
        self.capacity = capacity;
        Ok(())
    }
}

impl Qwen2 {
    pub fn from_gguf<R: Read + Seek>(
        content: &gguf_file::Content,
        reader: &mut R,
        kernels: Kernels,
    ) -> Result<Self> {
        let meta = |key: &str| match content.metadata.get(key) {
            Some(value) => Ok(value),
            None => bail!("the GGUF has no `{key}`"),
        };
        let count = |key: &str| -> Result<usize> { Ok(meta(key)?.to_u32()? as usize) };
        let n_head = count("qwen2.attention.head_count")?;
        let n_kv_head = count("qwen2.attention.head_count_kv")?;
        let hidden = count("qwen2.embedding_length")?;
        let context_length = count("qwen2.context_length")?;
        let n_blocks = count("qwen2.block_count")?;
        let eps = meta("qwen2.attention.layer_norm_rms_epsilon")?.to_f32()?;
        let rope_base = meta("qwen2.rope.freq_base")
            .and_then(|v| v.to_f32())
            .unwrap_or(10_000.0);
        if n_head == 0 || n_kv_head == 0 || n_head % n_kv_head != 0 || hidden % n_head != 0 {
            bail!("unsupported head layout: {n_head} heads, {n_kv_head} kv heads, width {hidden}");
        }
        let shape = Shape {
            n_blocks,
            n_head,
            n_kv_head,
            head_dim: hidden / n_head,
            context_length,
        };

        // Reading is sequential; widening the weights for the fast kernels is not.
        let mut tensor = |name: &str| content.tensor(reader, name, &Device::Cpu);
        let embeddings = tensor("token_embd.weight")?;
        // Without an output matrix the embeddings are tied: the table is read twice.
        let output = match tensor("output.weight") {
            Ok(w) => w,
            Err(_) => tensor("token_embd.weight")?,
        };
        let norm = tensor("output_norm.weight")?.dequantize(&Device::Cpu)?;
        let mut stored = Vec::with_capacity(n_blocks);
        for i in 0..n_blocks {
            let mut weight = |name: &str| tensor(&format!("blk.{i}.{name}"));
            stored.push(StoredBlock {
                attn_norm: weight("attn_norm.weight")?,
                q: weight("attn_q.weight")?,
                q_bias: weight("attn_q.bias")?,
                k: weight("attn_k.weight")?,
                k_bias: weight("attn_k.bias")?,
                v: weight("attn_v.weight")?,
                v_bias: weight("attn_v.bias")?,
                out: weight("attn_output.weight")?,
                ffn_norm: weight("ffn_norm.weight")?,
                gate: weight("ffn_gate.weight")?,
                up: weight("ffn_up.weight")?,
                down: weight("ffn_down.weight")?,
            });
        }
        let (output, blocks) = rayon::join(
            || Linear::new(output, kernels),
            || {
                stored
                    .into_par_iter()
                    .map(|b| b.prepare(kernels))
                    .collect::<Result<Vec<_>>>()
            },
        );
        let (output, blocks) = (output?, blocks?);
        let (cos, sin) = rotary_tables(shape.head_dim, rope_base, context_length)?;
        Ok(Self {
            embeddings,
            blocks,
            norm,
            output,
            cos,
            sin,
            eps,
            shape,
        })
    }

    /// An empty cache for this model.
    pub fn new_cache(&self) -> KvCache {
        KvCache {
            blocks: Vec::new(),
            capacity: 0,
            len: 0,
            shape: self.shape,
        }
    }

    /// Positions the model can attend over.
    pub fn context_length(&self) -> usize {
        self.shape.context_length
    }

    /// Runs `tokens` after the ones `cache` holds, appends their keys and values to it and
    /// returns the next-token logits after the last of them (`[vocab]`).
    pub fn forward(&self, tokens: &[u32], cache: &mut KvCache) -> Result<Tensor> {
        let seq = tokens.len();
        let past = cache.len;
        if seq == 0 {
            bail!("nothing to run");
        }
        if past + seq > self.shape.context_length {
            bail!(
                "{} tokens exceed the model's context of {}",
                past + seq,
                self.shape.context_length
            );
        }
        if cache.shape != self.shape {
            bail!("the cache belongs to a model of another shape");
        }
        cache.reserve(past + seq)?;
        let ids = Tensor::new(tokens, &Device::Cpu)?;
        let mut x = self.embeddings.embedding(&ids)?;
        let mask = if seq > 1 {
            Some(causal_mask(seq, past)?)
        } else {
            None
        };
        let cos = self.cos.narrow(0, past, seq)?;
        let sin = self.sin.narrow(0, past, seq)?;
        let step = Step {
            past,
            mask: mask.as_ref(),
            cos: &cos,
            sin: &sin,
        };
        for (block, kv) in self.blocks.iter().zip(&cache.blocks) {
            x = self.block(block, &x, kv, &step)?;
        }
        // Written only now, so a failed pass leaves the cache as it was.
        cache.len = past + seq;
        let last = rms_norm(&x.narrow(0, seq - 1, 1)?, &self.norm, self.eps)?;
        self.output.forward(&last)?.squeeze(0)
    }

    fn block(&self, block: &Block, x: &Tensor, kv: &BlockKv, step: &Step) -> Result<Tensor> {
        let h = rms_norm(x, &block.attn_norm, self.eps)?;
        let x = (self.attention(block, &h, kv, step)? + x)?;
        let h = rms_norm(&x, &block.ffn_norm, self.eps)?;
        let [gate, up] = forward_shared([&block.gate, &block.up], &h)?;
        let gated = (gate.silu()? * up)?;
        block.down.forward(&gated)? + x
    }

    /// Self-attention of `x` (`[seq, hidden]`) over the cached tokens and itself.
    fn attention(&self, block: &Block, x: &Tensor, kv: &BlockKv, step: &Step) -> Result<Tensor> {
        let Shape {
            n_head,
            n_kv_head,
            head_dim,
            ..
        } = self.shape;
        let seq = x.dim(0)?;
        let total = step.past + seq;
        let [q, k, v] = forward_shared([&block.q, &block.k, &block.v], x)?;
        let heads = |t: Tensor, bias: &Tensor, n: usize| {
            t.broadcast_add(bias)?.reshape((1, seq, n, head_dim))
        };
        // `rope_thd` takes the projections' own [seq, heads, dim] layout: no transpose first.
        let q = rope_thd(&heads(q, &block.q_bias, n_head)?, step.cos, step.sin)?;
        let k = rope_thd(&heads(k, &block.k_bias, n_kv_head)?, step.cos, step.sin)?;
        let v = heads(v, &block.v_bias, n_kv_head)?;
        let (keys_t, values) = kv.append(step.past, &k.squeeze(0)?, &v.squeeze(0)?)?;

        // Head h reads kv head h / group, so the query heads of one group stack into the rows
        // of one matmul against their shared keys: [kv_head, group * seq, dim]. The scale is a
        // power of two for Qwen2's head sizes, so applying it to q first is exact; the same
        // pass makes q head-major.
        let group = n_head / n_kv_head;
        let scale = 1.0 / (head_dim as f64).sqrt();
        let q = q
            .squeeze(0)?
            .transpose(0, 1)?
            .affine(scale, 0.0)?
            .reshape((n_kv_head, group * seq, head_dim))?;
        let scores = q.matmul(&keys_t)?;
        let scores = match step.mask {
            Some(mask) => scores
                .reshape((n_kv_head, group, seq, total))?
                .broadcast_add(mask)?
                .reshape((n_kv_head, group * seq, total))?,
            None => scores,
        };
        let weights = softmax_last_dim(&scores)?;
        let y = weights.matmul(&values)?; // [kv_head, group * seq, dim] = [head, seq, dim]
        let y = y
            .reshape((n_head, seq, head_dim))?
            .transpose(0, 1)?
            .reshape((seq, n_head * head_dim))?;
        block.out.forward(&y)
    }
}

/// What every block of one forward pass shares.
struct Step<'a> {
    past: usize,
    mask: Option<&'a Tensor>,
    cos: &'a Tensor,
    sin: &'a Tensor,
}

/// `-inf` where a new token would see a later one: `[seq, past + seq]`, added to the scores.
fn causal_mask(seq: usize, past: usize) -> Result<Tensor> {
    let total = past + seq;
    let mask: Vec<f32> = (0..seq)
        .flat_map(|i| (0..total).map(move |j| if j > past + i { f32::NEG_INFINITY } else { 0.0 }))
        .collect();
    Tensor::from_vec(mask, (seq, total), &Device::Cpu)
}

/// cos and sin of position × frequency, one row per position.
fn rotary_tables(head_dim: usize, base: f32, positions: usize) -> Result<(Tensor, Tensor)> {
    let inv_freq: Vec<f32> = (0..head_dim)
        .step_by(2)
        .map(|i| 1.0 / base.powf(i as f32 / head_dim as f32))
        .collect();
    let n = inv_freq.len();
    let inv_freq = Tensor::from_vec(inv_freq, (1, n), &Device::Cpu)?;
    let angles = Tensor::arange(0u32, positions as u32, &Device::Cpu)?
        .to_dtype(DType::F32)?
        .reshape((positions, 1))?
        .broadcast_mul(&inv_freq)?;
    Ok((angles.cos()?, angles.sin()?))
}

/// The index of the largest logit: greedy decoding without a sampler.
#[cfg(test)]
pub fn argmax(logits: &Tensor) -> Result<u32> {
    logits.argmax(D::Minus1)?.to_scalar::<u32>()
}
