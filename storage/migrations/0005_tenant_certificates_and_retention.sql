-- popgate schema, version 5: per-tenant TLS certificates and retention.

-- Retention: days a message is kept after delivery (received_at), whether
-- it was retrieved or not; NULL = kept forever. Enforced, like EXPIRE, by
-- `popgate-admin expire`.
ALTER TABLE popgate.tenants ADD COLUMN retention_days integer CHECK (retention_days > 0);
-- What that job looks for: a tenant's messages by age.
CREATE INDEX messages_received ON popgate.messages (tenant_id, received_at);

-- TLS certificates a tenant serves for its own names, chosen by SNI like
-- the files of tls.sni_directory; the gateway polls for changes
-- (tls.database_poll_ms). `popgate-admin tenant cert set` stores only
-- certificates whose names are the tenant's domain or under it, with the
-- chain (leaf first) and the private key as unencrypted PEM.
--
-- This table holds private keys: only popgate's own role should be able to
-- read it (REVOKE ALL ON popgate.tenant_certificates FROM PUBLIC, and grant
-- nothing to reporting roles).
--
-- tenant_id leads the key as in every tenant table, so it can be
-- distributed by tenant and co-located with users and messages
-- (create_distributed_table('popgate.tenant_certificates', 'tenant_id')).
CREATE TABLE popgate.tenant_certificates (
  tenant_id   bigint NOT NULL REFERENCES popgate.tenants (tenant_id) ON DELETE CASCADE,
  name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 64),
  chain_pem   text NOT NULL,
  key_pem     text NOT NULL,
  updated_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, name)
);
REVOKE ALL ON popgate.tenant_certificates FROM PUBLIC;
