use brain_migrations::testing::TestDb;
use sqlx::Connection;

use crate::fixtures;

#[tokio::test]
async fn hnsw_cosine_search_on_chunks_finds_the_nearest_and_uses_the_index() {
    let db = TestDb::new().await.unwrap();
    let a = fixtures::tenant(&db, "tenant-a").await;
    let b = fixtures::tenant(&db, "tenant-b").await;
    fixtures::chunks(&db, a, 50).await;
    fixtures::chunks(&db, b, 50).await;

    let mut conn = db.app_connection().await.unwrap();
    let mut tx = conn.begin().await.unwrap();
    brain_migrations::set_tenant(&mut tx, a).await.unwrap();
    // At 100 rows a sort is cheaper than the index; make the planner show it can use HNSW.
    for off in ["enable_seqscan", "enable_bitmapscan", "enable_sort"] {
        let sql = format!("SET LOCAL {off} = off");
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&mut *tx)
            .await
            .unwrap();
    }

    let query = fixtures::unit_vector(17);
    let sql = "SELECT text, page_start, tenant_id, 1 - (embedding <=> $1::vector) AS score \
               FROM chunks ORDER BY embedding <=> $1::vector LIMIT 3";
    let plan: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("EXPLAIN {sql}")))
        .bind(&query)
        .fetch_all(&mut *tx)
        .await
        .unwrap();
    assert!(
        plan.iter()
            .any(|line| line.contains("chunks_embedding_hnsw")),
        "the HNSW index is not used:\n{}",
        plan.join("\n")
    );

    let hits: Vec<(String, i32, uuid::Uuid, f64)> = sqlx::query_as(sql)
        .bind(&query)
        .fetch_all(&mut *tx)
        .await
        .unwrap();
    assert_eq!(hits[0].0, "chunk number 17 about topic17");
    assert_eq!(hits[0].1, 18, "page numbers are kept");
    assert!(
        hits[0].3 > 0.99,
        "cosine similarity of identical vectors, got {}",
        hits[0].3
    );
    assert!(
        hits.iter().all(|h| h.2 == a),
        "only tenant A's chunks come back"
    );

    // The full-text column is generated and indexed too.
    let fts: Vec<String> = sqlx::query_scalar(
        "SELECT text FROM chunks WHERE tsv @@ plainto_tsquery('english', 'topic42')",
    )
    .fetch_all(&mut *tx)
    .await
    .unwrap();
    assert_eq!(fts, ["chunk number 42 about topic42"]);
    tx.commit().await.unwrap();
}
