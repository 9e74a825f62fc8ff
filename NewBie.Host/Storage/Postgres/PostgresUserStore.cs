using Npgsql;
using NewBie.Host.Accounts;
using static NewBie.Host.Storage.Postgres.PostgresDatabase;

namespace NewBie.Host.Storage.Postgres;

/// <summary>
/// Users (their record, security stamp included, as jsonb) and API keys (columns) in PostgreSQL. A read-modify-write
/// of a user locks its row (SELECT … FOR UPDATE), so two nodes' changes of one user both land.
/// </summary>
public sealed class PostgresUserStore(PostgresDatabase database) : IUserStore
{
    private readonly NpgsqlDataSource _source = database.Source;

    public bool SharedWithOtherProcesses => true;

    public bool AnyUsers() => _source.Command("SELECT EXISTS (SELECT 1 FROM newbie_users)").Scalar<bool>();

    public UserRecord? FindUser(string name) =>
        _source.Command("SELECT record FROM newbie_users WHERE name = $1", Text(name)).Rows(r => FromJson<UserRecord>(r.GetString(0))).FirstOrDefault();

    public IReadOnlyList<UserRecord> Users() =>
        _source.Command("SELECT record FROM newbie_users ORDER BY name").Rows(r => FromJson<UserRecord>(r.GetString(0)));

    public bool TryAddUser(UserRecord user) =>
        _source.Command("INSERT INTO newbie_users (name, record) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING", Text(user.Name), Jsonb(ToJson(user))).Execute() == 1;

    public UserRecord? UpdateUser(string name, Action<UserRecord> change)
    {
        using var connection = _source.OpenConnection();
        using var transaction = connection.BeginTransaction();
        var user = connection.Command(transaction, "SELECT record FROM newbie_users WHERE name = $1 FOR UPDATE", Text(name))
            .Rows(r => FromJson<UserRecord>(r.GetString(0))).FirstOrDefault();
        if (user is null) return null;
        change(user);
        connection.Command(transaction, "UPDATE newbie_users SET record = $2 WHERE name = $1", Text(name), Jsonb(ToJson(user))).Execute();
        transaction.Commit();
        return user;
    }

    public bool RemoveUser(string name)
    {
        using var connection = _source.OpenConnection();
        using var transaction = connection.BeginTransaction();
        connection.Command(transaction, "DELETE FROM newbie_api_keys WHERE user_name = $1", Text(name)).Execute();
        var removed = connection.Command(transaction, "DELETE FROM newbie_users WHERE name = $1", Text(name)).Execute() == 1;
        transaction.Commit();
        return removed;
    }

    public void AddKey(ApiKeyRecord key) =>
        _source.Command("""
            INSERT INTO newbie_api_keys (id, user_name, name, hash, created_at, last_used_at, revoked_at) VALUES ($1, $2, $3, $4, $5, $6, $7)
            """, Text(key.Id), Text(key.UserName), Text(key.Name), Value(key.Hash), Timestamp(key.CreatedAt), Timestamp(key.LastUsedAt), Timestamp(key.RevokedAt)).Execute();

    public ApiKeyRecord? FindKey(string id) =>
        _source.Command($"SELECT {KeyColumns} FROM newbie_api_keys WHERE id = $1", Text(id)).Rows(ReadKey).FirstOrDefault();

    public IReadOnlyList<ApiKeyRecord> Keys(string userName) =>
        _source.Command($"SELECT {KeyColumns} FROM newbie_api_keys WHERE user_name = $1 ORDER BY created_at, id", Text(userName)).Rows(ReadKey);

    public bool RevokeKey(string userName, string id, DateTime at) =>
        _source.Command("UPDATE newbie_api_keys SET revoked_at = $3 WHERE id = $1 AND user_name = $2 AND revoked_at IS NULL",
            Text(id), Text(userName), Timestamp(at)).Execute() == 1;

    public void TouchKey(string id, DateTime at) =>
        _source.Command("UPDATE newbie_api_keys SET last_used_at = $2 WHERE id = $1", Text(id), Timestamp(at)).Execute();

    private const string KeyColumns = "id, user_name, name, hash, created_at, last_used_at, revoked_at";

    private static ApiKeyRecord ReadKey(NpgsqlDataReader r) => new()
    {
        Id = r.GetString(0),
        UserName = r.GetString(1),
        Name = r.GetString(2),
        Hash = r.GetFieldValue<byte[]>(3),
        CreatedAt = r.GetDateTime(4),
        LastUsedAt = r.IsDBNull(5) ? null : r.GetDateTime(5),
        RevokedAt = r.IsDBNull(6) ? null : r.GetDateTime(6),
    };
}
