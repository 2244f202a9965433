-- KooGallery's idempotency key for a purchase is its orderId: one subscription per order.
CREATE UNIQUE INDEX subscriptions_order ON subscriptions (order_id) WHERE order_id <> '';

-- V2 request nonces seen recently, so a replayed request is refused.
CREATE TABLE koogallery_nonces (
    nonce   TEXT PRIMARY KEY,
    seen_at TEXT NOT NULL
);
CREATE INDEX koogallery_nonces_seen ON koogallery_nonces (seen_at);
