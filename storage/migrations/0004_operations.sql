-- popgate schema, version 4: what operations need.

-- Who is online, and kicking: the lock row says where a session comes from
-- and on which listener; an administrator sets kick_requested_at and the
-- owning instance ends the session at its next lease renewal.
ALTER TABLE popgate.maildrop_locks
  ADD COLUMN client_address text,
  ADD COLUMN listener text,
  ADD COLUMN kick_requested_at timestamptz;

-- Quota usage kept up to date by triggers, so a delivery checks its quota
-- in O(1) instead of summing the maildrop.
ALTER TABLE popgate.users ADD COLUMN used_bytes bigint NOT NULL DEFAULT 0 CHECK (used_bytes >= 0);
UPDATE popgate.users u SET used_bytes = coalesce(
  (SELECT sum(size_bytes) FROM popgate.messages m WHERE m.tenant_id = u.tenant_id AND m.user_id = u.user_id), 0);

CREATE FUNCTION popgate.messages_added() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE popgate.users u SET used_bytes = u.used_bytes + n.bytes
    FROM (SELECT tenant_id, user_id, sum(size_bytes) AS bytes FROM added GROUP BY tenant_id, user_id) n
   WHERE u.tenant_id = n.tenant_id AND u.user_id = n.user_id;
  RETURN NULL;
END $$;
CREATE FUNCTION popgate.messages_removed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE popgate.users u SET used_bytes = greatest(u.used_bytes - n.bytes, 0)
    FROM (SELECT tenant_id, user_id, sum(size_bytes) AS bytes FROM removed GROUP BY tenant_id, user_id) n
   WHERE u.tenant_id = n.tenant_id AND u.user_id = n.user_id;
  RETURN NULL;
END $$;
CREATE TRIGGER messages_added AFTER INSERT ON popgate.messages
  REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION popgate.messages_added();
CREATE TRIGGER messages_removed AFTER DELETE ON popgate.messages
  REFERENCING OLD TABLE AS removed FOR EACH STATEMENT EXECUTE FUNCTION popgate.messages_removed();

-- RFC 2449 EXPIRE counts from retrieval: the gateway records when a
-- message was first retrieved (at the end of the session that did it).
ALTER TABLE popgate.messages ADD COLUMN retrieved_at timestamptz;
-- Delete mode 'hide': DELE then QUIT hides messages instead of removing
-- them (kept for retention or legal hold); hidden messages are never listed.
ALTER TABLE popgate.messages ADD COLUMN hidden boolean NOT NULL DEFAULT false;
ALTER TABLE popgate.tenants ADD COLUMN delete_mode text NOT NULL DEFAULT 'delete'
  CHECK (delete_mode IN ('delete', 'hide'));
CREATE INDEX messages_retention ON popgate.messages (tenant_id, retrieved_at) WHERE retrieved_at IS NOT NULL;

-- The UIDL-change detector: the newest UIDLs a session left in the
-- maildrop. If the next login finds none of them, the maildrop's UIDLs
-- changed under the clients, which then download everything again.
ALTER TABLE popgate.users ADD COLUMN last_uidls text[];

-- Hidden messages are never listed: the login snapshot reads this index
-- alone, so it leaves them out.
DROP INDEX popgate.messages_listing;
CREATE INDEX messages_listing ON popgate.messages (tenant_id, user_id, message_id)
  INCLUDE (size_bytes, uidl) WHERE NOT hidden;
