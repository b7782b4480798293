-- popgate schema, version 2: tenant policy, SASL/APOP credentials, last login.

-- Per-tenant policy, picked up at every login (no restart needed).
ALTER TABLE popgate.tenants
  -- RFC 2449 LOGIN-DELAY: minimum seconds between two logins of a user.
  ADD COLUMN login_delay_s integer NOT NULL DEFAULT 0 CHECK (login_delay_s >= 0),
  -- RFC 2449 EXPIRE: days a message is kept once retrieved; NULL = NEVER.
  ADD COLUMN expire_days integer CHECK (expire_days IS NULL OR expire_days >= 0),
  -- Refuse every login of this tenant over an unencrypted connection.
  ADD COLUMN require_tls boolean NOT NULL DEFAULT false,
  -- Concurrent sessions (any state) of this tenant per instance; NULL = default.
  ADD COLUMN sessions_max integer CHECK (sessions_max IS NULL OR sessions_max > 0),
  -- Logins per minute for this tenant per instance; NULL = default.
  ADD COLUMN logins_per_minute integer CHECK (logins_per_minute IS NULL OR logins_per_minute > 0),
  -- SASL mechanisms (and USER, APOP) allowed; NULL = all that are enabled.
  ADD COLUMN mechanisms text[];

ALTER TABLE popgate.users
  -- Dovecot-style {SCRAM-SHA-256}iterations,salt,StoredKey,ServerKey: lets a
  -- user whose password_hash is argon2id use SCRAM-SHA-256 too. Not a
  -- plaintext equivalent.
  ADD COLUMN scram_sha256 text CHECK (scram_sha256 IS NULL OR scram_sha256 LIKE '{SCRAM-SHA-256}%'),
  -- APOP needs the shared secret itself (RFC 1939 section 7); only users who
  -- opt in have one, and APOP is off unless a listener enables it.
  ADD COLUMN apop_secret text,
  -- Set when a session opens the maildrop; LOGIN-DELAY is measured from it.
  ADD COLUMN last_login_at timestamptz;
