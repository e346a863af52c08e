-- The chain's database for storesense gateways (run as the PostgreSQL superuser):
--   runuser -u postgres -- psql -v ON_ERROR_STOP=1 -v password="'...'" -f setup.sql
-- Text must sort by bytes, as SQLite's does (the gateway refuses another collation):
-- hence template0 with LC_COLLATE/LC_CTYPE 'C'. The gateways create their tables
-- themselves (migrations, safe to run from several gateways at once).
CREATE ROLE storesense LOGIN PASSWORD :password;
CREATE DATABASE storesense OWNER storesense TEMPLATE template0 ENCODING 'UTF8'
    LC_COLLATE 'C' LC_CTYPE 'C';
\connect storesense
-- PostgreSQL 15 no longer lets every role create in schema public
ALTER SCHEMA public OWNER TO storesense;
