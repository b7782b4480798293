-- popgate schema, version 1.
--
-- Every table that holds tenant data carries tenant_id first in its primary
-- key, so the schema can be distributed by tenant (Citus) with co-located
-- tables: create_distributed_table('popgate.users', 'tenant_id'), and the same
-- for messages and maildrop_locks, with tenants as a reference table.

CREATE SCHEMA IF NOT EXISTS popgate;

CREATE TABLE popgate.tenants (
  tenant_id   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  domain      text NOT NULL UNIQUE
              CHECK (domain = lower(domain) AND length(domain) BETWEEN 1 AND 253),
  created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE popgate.users (
  tenant_id      bigint NOT NULL REFERENCES popgate.tenants (tenant_id) ON DELETE CASCADE,
  user_id        bigint GENERATED ALWAYS AS IDENTITY,
  local_part     text NOT NULL
                 CHECK (local_part = lower(local_part) AND length(local_part) BETWEEN 1 AND 64),
  -- Dovecot-style "{SCHEME}..." string from a salted, modern KDF. Never plaintext.
  password_hash  text NOT NULL CHECK (password_hash LIKE '{%}%'),
  enabled        boolean NOT NULL DEFAULT true,
  quota_bytes    bigint CHECK (quota_bytes IS NULL OR quota_bytes >= 0),
  created_at     timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, user_id),
  UNIQUE (tenant_id, local_part)
);

-- A message is immutable once delivered: its CRLF-normalised body, exact size
-- and UIDL are fixed at delivery.
CREATE TABLE popgate.messages (
  tenant_id    bigint NOT NULL,
  user_id      bigint NOT NULL,
  message_id   bigint GENERATED ALWAYS AS IDENTITY,
  uidl         text NOT NULL CHECK (uidl ~ '^[\x21-\x7e]{1,70}$'),
  size_bytes   bigint NOT NULL CHECK (size_bytes = octet_length(body)),
  received_at  timestamptz NOT NULL DEFAULT now(),
  body         bytea NOT NULL,
  PRIMARY KEY (tenant_id, user_id, message_id),
  UNIQUE (tenant_id, user_id, uidl),
  FOREIGN KEY (tenant_id, user_id) REFERENCES popgate.users (tenant_id, user_id) ON DELETE CASCADE
);
-- Uncompressed out-of-line storage: substring() on a body reads only the TOAST
-- chunks it needs, which is what makes chunked RETR streaming cheap.
ALTER TABLE popgate.messages ALTER COLUMN body SET STORAGE EXTERNAL;
-- The login snapshot reads (message_id, size, uidl) from this index alone.
CREATE INDEX messages_listing ON popgate.messages (tenant_id, user_id, message_id)
  INCLUDE (size_bytes, uidl);

-- The exclusive maildrop lock, shared by every popgate instance on this
-- database. A lock is live while lease_expires_at is in the future; holders
-- renew it every lease/3. A killed holder's lock lapses within one lease.
CREATE TABLE popgate.maildrop_locks (
  tenant_id         bigint NOT NULL,
  user_id           bigint NOT NULL,
  holder_instance   text NOT NULL,
  holder_session    bigint NOT NULL,
  acquired_at       timestamptz NOT NULL DEFAULT now(),
  lease_expires_at  timestamptz NOT NULL,
  PRIMARY KEY (tenant_id, user_id),
  FOREIGN KEY (tenant_id, user_id) REFERENCES popgate.users (tenant_id, user_id) ON DELETE CASCADE
);
CREATE INDEX maildrop_locks_holder ON popgate.maildrop_locks (holder_instance, holder_session);

-- 16 lowercase hex digits (64 random bits), for UIDLs assigned at delivery.
CREATE FUNCTION popgate.new_uidl() RETURNS text LANGUAGE sql VOLATILE AS
$$ SELECT substr(md5(gen_random_uuid()::text), 1, 16) $$;
