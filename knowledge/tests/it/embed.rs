//! The embedders: the local MiniLM model's semantics, and the OpenAI-compatible client
//! against a local server speaking the `/v1/embeddings` wire format.

use brain_knowledge::embed::cosine;
use brain_knowledge::{EmbedError, Embedder, OpenAiEmbedder, OpenAiEmbedderConfig};
use serde_json::json;
use wiremock::matchers::{body_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::fixtures::local_model;

#[tokio::test]
async fn local_model_puts_related_sentences_close() {
    let model = local_model();
    let texts: Vec<String> = [
        "The cat sits on the mat.",
        "A kitten is resting on a rug.",
        "Quarterly revenue grew by twelve percent.",
        "How do I reset my password?",
        "Steps to recover access to your account after forgetting the password",
    ]
    .map(String::from)
    .to_vec();
    let v = model.embed(&texts).await.unwrap();
    assert_eq!(v.len(), 5);
    for vector in &v {
        assert_eq!(vector.len(), 384);
        let norm: f32 = vector.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4, "unit length, got {norm}");
    }
    let related = cosine(&v[0], &v[1]);
    let related2 = cosine(&v[3], &v[4]);
    let unrelated = cosine(&v[0], &v[2]);
    assert!(related > 0.5, "cat/kitten cosine {related}");
    assert!(related2 > 0.5, "password cosine {related2}");
    assert!(unrelated < 0.2, "cat/revenue cosine {unrelated}");
}

#[tokio::test]
async fn padding_does_not_change_a_vector() {
    // The same sentence alone and next to a much longer one (which pads it) must embed
    // the same: pooling has to ignore padded positions.
    let model = local_model();
    let short = "Brand voice: friendly and direct.".to_owned();
    let long = "A much longer sentence that forces the batch to pad the short one with many \
                padding tokens before pooling happens."
        .to_owned();
    let alone = model.embed(std::slice::from_ref(&short)).await.unwrap();
    let batched = model.embed(&[short, long]).await.unwrap();
    assert!(cosine(&alone[0], &batched[0]) > 0.9999);
}

fn config(base_url: String) -> OpenAiEmbedderConfig {
    OpenAiEmbedderConfig {
        base_url,
        api_key: Some("sk-test-123".into()),
        model: "text-embedding-3-small".into(),
        dimension: 3,
        request_dimensions: true,
        batch_size: 2,
    }
}

#[tokio::test]
async fn openai_embedder_speaks_the_wire_format() {
    brain_auth::install_crypto_provider();
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/embeddings"))
        .and(header("authorization", "Bearer sk-test-123"))
        .and(body_json(json!({
            "model": "text-embedding-3-small",
            "input": ["alpha", "beta"],
            "encoding_format": "float",
            "dimensions": 3
        })))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "object": "list",
            // Out of order on purpose: the client must sort by index.
            "data": [
                {"object": "embedding", "index": 1, "embedding": [0.0, 2.0, 0.0]},
                {"object": "embedding", "index": 0, "embedding": [3.0, 0.0, 4.0]}
            ],
            "model": "text-embedding-3-small",
            "usage": {"prompt_tokens": 2, "total_tokens": 2}
        })))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/embeddings"))
        .and(body_json(json!({
            "model": "text-embedding-3-small",
            "input": ["gamma"],
            "encoding_format": "float",
            "dimensions": 3
        })))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "object": "list",
            "data": [{"object": "embedding", "index": 0, "embedding": [0.0, 0.0, 1.0]}],
            "model": "text-embedding-3-small",
            "usage": {"prompt_tokens": 1, "total_tokens": 1}
        })))
        .expect(1)
        .mount(&server)
        .await;
    let embedder = OpenAiEmbedder::new(
        config(format!("{}/v1", server.uri())),
        reqwest::Client::new(),
    );
    assert_eq!(embedder.id(), "openai:text-embedding-3-small");
    let texts = ["alpha", "beta", "gamma"].map(String::from);
    let vectors = embedder.embed(&texts).await.unwrap();
    assert_eq!(
        vectors,
        vec![
            vec![0.6, 0.0, 0.8],
            vec![0.0, 1.0, 0.0],
            vec![0.0, 0.0, 1.0]
        ]
    );
}

#[tokio::test]
async fn openai_embedder_reports_errors_and_wrong_widths() {
    brain_auth::install_crypto_provider();
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/embeddings"))
        .and(body_json(json!({
            "model": "text-embedding-3-small",
            "input": ["bad key"],
            "encoding_format": "float",
            "dimensions": 3
        })))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({
            "error": {"message": "Incorrect API key provided", "type": "invalid_request_error"}
        })))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/embeddings"))
        .and(body_json(json!({
            "model": "text-embedding-3-small",
            "input": ["too wide"],
            "encoding_format": "float",
            "dimensions": 3
        })))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "object": "list",
            "data": [{"object": "embedding", "index": 0, "embedding": [1.0, 0.0, 0.0, 0.0]}],
            "model": "text-embedding-3-small"
        })))
        .mount(&server)
        .await;
    let embedder = OpenAiEmbedder::new(
        config(format!("{}/v1/", server.uri())),
        reqwest::Client::new(),
    );
    let err = embedder.embed(&["bad key".to_owned()]).await.unwrap_err();
    assert!(
        matches!(&err, EmbedError::Status { status: 401, body } if body.contains("Incorrect API key")),
        "{err:?}"
    );
    let err = embedder.embed(&["too wide".to_owned()]).await.unwrap_err();
    assert!(
        matches!(
            err,
            EmbedError::Dimension {
                expected: 3,
                got: 4
            }
        ),
        "{err:?}"
    );
}

/// Our packed encoder against candle's reference BERT (what the embedder ran before) on
/// texts of very different lengths, including one past the 256-token truncation.
#[tokio::test]
async fn the_encoder_matches_the_reference_bert() {
    use candle_core::{DType, Device, Tensor};
    use candle_transformers::models::bert::{BertModel, Config};

    let dir = crate::fixtures::model_dir();
    let texts: Vec<String> = vec![
        "Brand voice: friendly and direct.".into(),
        "Quarterly revenue grew by twelve percent while churn fell.".into(),
        "word ".repeat(400),
        "How do I reset my password? Steps to recover access to your account.".into(),
    ];
    let ours = local_model().embed(&texts).await.unwrap();

    let config: Config =
        serde_json::from_slice(&std::fs::read(dir.join("config.json")).unwrap()).unwrap();
    let mut tokenizer = tokenizers::Tokenizer::from_file(dir.join("tokenizer.json")).unwrap();
    tokenizer.with_padding(None);
    tokenizer
        .with_truncation(Some(tokenizers::TruncationParams {
            max_length: 256,
            ..Default::default()
        }))
        .unwrap();
    let weights = std::fs::read(dir.join("model.safetensors")).unwrap();
    let vb = candle_nn::VarBuilder::from_buffered_safetensors(weights, DType::F32, &Device::Cpu)
        .unwrap();
    let bert = BertModel::load(vb, &config).unwrap();
    for (text, vector) in texts.iter().zip(&ours) {
        let ids = tokenizer
            .encode(text.as_str(), true)
            .unwrap()
            .get_ids()
            .to_vec();
        let n = ids.len();
        let input = Tensor::new(ids.as_slice(), &Device::Cpu)
            .unwrap()
            .unsqueeze(0)
            .unwrap();
        let types = input.zeros_like().unwrap();
        let hidden = bert.forward(&input, &types, None).unwrap();
        let mean = (hidden.sum(1).unwrap() / n as f64).unwrap();
        let reference: Vec<f32> = mean.squeeze(0).unwrap().to_vec1().unwrap();
        let similarity = cosine(vector, &reference);
        assert!(
            similarity > 0.99999,
            "{} tokens: cosine {similarity} to the reference",
            n
        );
    }
}
