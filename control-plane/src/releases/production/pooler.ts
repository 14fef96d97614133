/**
 * Supavisor bootstrap, written by us: evaluated once the pooler's own migrations ran (see the
 * supavisor command in index.ts), it creates the project's pooler tenant unless it exists. The
 * tenant authenticates clients through `pgbouncer.get_auth` (the image's auth query function) as
 * the `pgbouncer` role, whose password is the project's database password, read from the
 * environment here so it never sits in this file. Clients connect as `<user>.<POOLER_TENANT_ID>`.
 */
export const POOLER_TEMPLATE = `{:ok, _} = Application.ensure_all_started(:supavisor)

get = fn name, default -> System.get_env(name, default) end
tenant_id = get.("POOLER_TENANT_ID", "")
pool_size = get.("POOLER_DEFAULT_POOL_SIZE", "20")

if tenant_id == "" do
  raise "POOLER_TENANT_ID is not set"
end

if Supavisor.Tenants.get_tenant_by_external_id(tenant_id) do
  IO.puts("supavisor: tenant " <> tenant_id <> " already exists")
else
  params = %{
    "external_id" => tenant_id,
    "db_host" => get.("POSTGRES_HOST", "db"),
    "db_port" => get.("POSTGRES_PORT", "5432"),
    "db_database" => get.("POSTGRES_DB", "postgres"),
    "require_user" => false,
    "auth_query" => "SELECT * FROM pgbouncer.get_auth($1)",
    "default_max_clients" => get.("POOLER_MAX_CLIENT_CONN", "100"),
    "default_pool_size" => pool_size,
    "default_parameter_status" => %{"server_version" => get.("POSTGRES_VERSION", "15.8")},
    "users" => [
      %{
        "db_user" => "pgbouncer",
        "db_password" => get.("POSTGRES_PASSWORD", ""),
        "mode_type" => get.("POOLER_POOL_MODE", "transaction"),
        "pool_size" => pool_size,
        "is_manager" => true
      }
    ]
  }

  case Supavisor.Tenants.create_tenant(params) do
    {:ok, _} -> IO.puts("supavisor: tenant " <> tenant_id <> " created")
    {:error, reason} -> raise "supavisor: cannot create tenant: " <> inspect(reason)
  end
end
`;
