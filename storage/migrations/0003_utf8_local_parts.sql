-- popgate schema, version 3: UTF-8 local parts (RFC 6531, RFC 6856).
--
-- Logins match case-insensitively for ASCII letters only, in popgate and in
-- popgate-admin alike. lower() under a UTF-8 database locale would also fold
-- non-ASCII letters, so a local part like 'Jürgen' could be stored in a form
-- no login ever produces; compare in the "C" collation, where lower() only
-- touches ASCII. Lengths are in octets, as the tools count them.
ALTER TABLE popgate.users DROP CONSTRAINT users_local_part_check;
ALTER TABLE popgate.users ADD CONSTRAINT users_local_part_check
  CHECK (local_part = lower(local_part COLLATE "C") AND octet_length(local_part) BETWEEN 1 AND 64);

ALTER TABLE popgate.tenants DROP CONSTRAINT tenants_domain_check;
ALTER TABLE popgate.tenants ADD CONSTRAINT tenants_domain_check
  CHECK (domain = lower(domain COLLATE "C") AND octet_length(domain) BETWEEN 1 AND 253);
