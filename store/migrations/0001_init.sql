-- Registry of carrier subscriptions: one row per KooGallery instance and/or SmartHub SIM
-- package, with the carrier user and package KooDrive knows them by.
CREATE TABLE subscriptions (
    id                 {{ID}},
    instance_id        TEXT UNIQUE,
    order_id           TEXT NOT NULL DEFAULT '',
    carrier_user_id    TEXT NOT NULL,
    package_id         TEXT NOT NULL,
    carrier_order_id   TEXT NOT NULL DEFAULT '',
    carrier_order_time TEXT NOT NULL DEFAULT '',
    expire_time        TEXT NOT NULL DEFAULT '',
    g_iccid            TEXT,
    package_code       TEXT,
    status             TEXT NOT NULL DEFAULT 'active',
    frozen_period      TEXT NOT NULL DEFAULT '',
    created_at         TEXT NOT NULL,
    updated_at         TEXT NOT NULL
);
CREATE UNIQUE INDEX subscriptions_sim ON subscriptions (g_iccid, package_code);

-- What happened to a subscription, in order: frozen, unfrozen, released, imported.
CREATE TABLE subscription_events (
    id              {{ID}},
    subscription_id BIGINT NOT NULL REFERENCES subscriptions (id),
    at              TEXT NOT NULL,
    event           TEXT NOT NULL,
    detail          TEXT NOT NULL DEFAULT ''
);
CREATE INDEX subscription_events_subscription ON subscription_events (subscription_id);

-- Every inbound call, accepted or not, with the answer it got.
CREATE TABLE deliveries (
    id          {{ID}},
    source      TEXT NOT NULL,
    received_at TEXT NOT NULL,
    activity    TEXT NOT NULL DEFAULT '',
    subject     TEXT NOT NULL DEFAULT '',
    outcome     TEXT NOT NULL,
    detail      TEXT NOT NULL DEFAULT '',
    workflow_id TEXT NOT NULL DEFAULT '',
    request     TEXT NOT NULL DEFAULT ''
);
CREATE INDEX deliveries_received ON deliveries (received_at);

-- One row per expiry ever accepted. It outlives Temporal's retention, so a delivery
-- retried months later is still recognised and never freezes or notifies twice.
CREATE TABLE expirations (
    workflow_id     TEXT PRIMARY KEY,
    source          TEXT NOT NULL,
    subject         TEXT NOT NULL,
    period          TEXT NOT NULL,
    subscription_id BIGINT NOT NULL REFERENCES subscriptions (id),
    carrier_user_id TEXT NOT NULL,
    package_id      TEXT NOT NULL,
    test            INTEGER NOT NULL DEFAULT 0,
    state           TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT NOT NULL DEFAULT '',
    notified_at     TEXT NOT NULL DEFAULT '',
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL
);
CREATE INDEX expirations_state ON expirations (state);
CREATE INDEX expirations_subject ON expirations (subject);
