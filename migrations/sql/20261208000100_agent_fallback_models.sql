-- An agent's fallback models (`provider:model`, tried in order when its model is rate
-- limited, failing or unreachable).
ALTER TABLE agents ADD COLUMN fallback_models text[] NOT NULL DEFAULT '{}'
    CHECK (cardinality(fallback_models) <= 3);
