-- A tenant-wide daily token budget (all agents together), next to each agent's own.
ALTER TABLE tenants ADD COLUMN max_tokens_per_day bigint CHECK (max_tokens_per_day > 0);
