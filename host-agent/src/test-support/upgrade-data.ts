/**
 * The data upgrade tests move across PostgreSQL majors (major-version.docker.test.ts and
 * test/upgrades/upgrades.test.ts): two extensions (one with an index on its operator class),
 * 110k rows over three tables in two schemas, a foreign key, a view, functions and a trigger.
 */
export const UPGRADE_SAMPLE_SQL = `
create extension pg_trgm;
create extension hstore;
create table customers (id bigserial primary key, name text not null, tags hstore);
create table orders (id bigserial primary key, customer_id bigint not null references customers(id),
  total numeric(12,2) not null, created_at timestamptz not null default now());
create schema audit;
create table audit.events (id bigint generated always as identity primary key, what text not null);
insert into customers (name, tags)
  select 'customer ' || g, hstore('tier', (g % 3)::text) from generate_series(1, 30000) g;
insert into orders (customer_id, total) select (g % 30000) + 1, (g % 997) / 3.0 from generate_series(1, 70000) g;
insert into audit.events (what) select 'event ' || g from generate_series(1, 10000) g;
create index customers_name_trgm on customers using gin (name gin_trgm_ops);
create view big_customers as
  select c.id, c.name, sum(o.total) as spent from customers c join orders o on o.customer_id = c.id
  group by c.id, c.name having sum(o.total) > 700;
create function spent_by(cid bigint) returns numeric language sql stable
  as $$ select coalesce(sum(total), 0) from orders where customer_id = cid $$;
create function audit.log_order() returns trigger language plpgsql as $$
begin insert into audit.events (what) values ('order ' || new.id); return new; end $$;
create trigger orders_audit after insert on orders for each row execute function audit.log_order();
`;
