//! Rows the schema tests insert, always as the owner (RLS does not apply to it).

use brain_migrations::testing::TestDb;
use uuid::Uuid;

pub async fn tenant(db: &TestDb, slug: &str) -> Uuid {
    sqlx::query_scalar("INSERT INTO tenants (slug, name) VALUES ($1, $1) RETURNING id")
        .bind(slug)
        .fetch_one(&db.owner)
        .await
        .unwrap()
}

pub async fn agent(db: &TestDb, tenant: Uuid, slug: &str) -> Uuid {
    sqlx::query_scalar(
        "INSERT INTO agents (tenant_id, name, slug, role, goal) \
         VALUES ($1, $2, $2, 'Analyst', 'Explain the numbers') RETURNING id",
    )
    .bind(tenant)
    .bind(slug)
    .fetch_one(&db.owner)
    .await
    .unwrap()
}

/// A unit vector of dimension 384 pointing mostly along `axis`.
pub fn unit_vector(axis: usize) -> String {
    let mut v = vec![0.0f32; 384];
    v[axis % 384] = 1.0;
    v[(axis + 1) % 384] = 0.1;
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    let parts: Vec<String> = v.iter().map(|x| (x / norm).to_string()).collect();
    format!("[{}]", parts.join(","))
}

/// A collection + document + `n` chunks for `tenant`, chunk `i` embedded along axis `i`.
pub async fn chunks(db: &TestDb, tenant: Uuid, n: usize) -> Uuid {
    let collection: Uuid = sqlx::query_scalar(
        "INSERT INTO knowledge_collections (tenant_id, name) VALUES ($1, 'brand') RETURNING id",
    )
    .bind(tenant)
    .fetch_one(&db.owner)
    .await
    .unwrap();
    let document: Uuid = sqlx::query_scalar(
        "INSERT INTO documents (tenant_id, collection_id, title, filename, media_type, \
         size_bytes, content_sha256, status) \
         VALUES ($1, $2, 'Brand book', 'brand.pdf', 'application/pdf', 10, $3, 'ready') \
         RETURNING id",
    )
    .bind(tenant)
    .bind(collection)
    .bind(format!("{:064x}", tenant.as_u128()))
    .fetch_one(&db.owner)
    .await
    .unwrap();
    for i in 0..n {
        sqlx::query(
            "INSERT INTO chunks (tenant_id, collection_id, document_id, ordinal, page_start, \
             page_end, text, embedding) VALUES ($1, $2, $3, $4, $5, $5, $6, $7::vector)",
        )
        .bind(tenant)
        .bind(collection)
        .bind(document)
        .bind(i as i32)
        .bind(i as i32 + 1)
        .bind(format!("chunk number {i} about topic{i}"))
        .bind(unit_vector(i))
        .execute(&db.owner)
        .await
        .unwrap();
    }
    collection
}
