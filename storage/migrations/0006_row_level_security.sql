-- popgate schema, version 6: row-level security on the tenant tables, as
-- defence in depth behind the tenant_id in every statement.
--
-- A row of users, messages, maildrop_locks or tenant_certificates is
-- visible (and writable) only to a transaction that declared its tenant:
--
--   SELECT set_config('popgate.tenant_id', '42', true);   -- this transaction
--
-- or that declared itself cross-tenant:
--
--   SET popgate.all_tenants = on;                         -- this session
--
-- Anything else sees no rows and can write none. The gateway declares the
-- tenant in the first statement of every request (storage/pg_statements.cc),
-- so even a statement that forgot its tenant_id could only reach the
-- session's own tenant; it goes cross-tenant in one statement only, lease
-- renewal, which is keyed on its own instance. popgate-admin, the retention
-- job and the certificate watcher are cross-tenant by nature and say so.
--
-- FORCE: the rules hold for the tables' owner too (popgate's own role).
-- Superusers and roles with BYPASSRLS skip them: do not give popgate such
-- a role. popgate.tenants holds no mail and stays readable (a login must
-- find its tenant by domain before it knows the tenant).
--
-- Citus (untested here): set_config() is not propagated to the workers, so
-- on a distributed schema these policies would hide every row from the
-- gateway; see "Citus" in deploy/README.md before distributing.

CREATE FUNCTION popgate.visible_tenant(row_tenant bigint) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT row_tenant = nullif(current_setting('popgate.tenant_id', true), '')::bigint
      OR coalesce(current_setting('popgate.all_tenants', true), '') = 'on'
$$;

ALTER TABLE popgate.users ENABLE ROW LEVEL SECURITY;
ALTER TABLE popgate.users FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_rows ON popgate.users
  USING (popgate.visible_tenant(tenant_id)) WITH CHECK (popgate.visible_tenant(tenant_id));

ALTER TABLE popgate.messages ENABLE ROW LEVEL SECURITY;
ALTER TABLE popgate.messages FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_rows ON popgate.messages
  USING (popgate.visible_tenant(tenant_id)) WITH CHECK (popgate.visible_tenant(tenant_id));

ALTER TABLE popgate.maildrop_locks ENABLE ROW LEVEL SECURITY;
ALTER TABLE popgate.maildrop_locks FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_rows ON popgate.maildrop_locks
  USING (popgate.visible_tenant(tenant_id)) WITH CHECK (popgate.visible_tenant(tenant_id));

ALTER TABLE popgate.tenant_certificates ENABLE ROW LEVEL SECURITY;
ALTER TABLE popgate.tenant_certificates FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_rows ON popgate.tenant_certificates
  USING (popgate.visible_tenant(tenant_id)) WITH CHECK (popgate.visible_tenant(tenant_id));
