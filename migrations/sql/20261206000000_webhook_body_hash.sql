-- Deliveries whose signature covers only the body (Shopify, WooCommerce) carry their delivery
-- id and topic in unsigned headers: a captured delivery could be replayed under a new id or
-- another topic. Each single-event delivery records the SHA-256 of what its signature covers
-- (the body; for Brain's generic scheme the timestamp and the body), unique per webhook.
ALTER TABLE webhook_deliveries ADD COLUMN signed_sha256 bytea;
CREATE UNIQUE INDEX webhook_deliveries_signed_once
    ON webhook_deliveries (webhook_id, signed_sha256) WHERE signed_sha256 IS NOT NULL;
