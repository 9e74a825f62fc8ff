using LiteDB;
using NewBie.Host.Accounts;

namespace NewBie.Host.Storage;

/// <summary>Users and API keys in the app database. Read-modify-write steps hold one lock, so none is lost.</summary>
public sealed class LiteDbUserStore : IUserStore
{
    private readonly ILiteCollection<UserRecord> _users;
    private readonly ILiteCollection<ApiKeyRecord> _keys;
    private readonly Lock _gate;

    public LiteDbUserStore(AppDatabase database)
    {
        _gate = database.Gate;
        _users = database.Collection<UserRecord>("users");
        _keys = database.Collection<ApiKeyRecord>("api_keys");
        _keys.EnsureIndex(k => k.UserName);
    }

    public bool AnyUsers() => _users.Count() > 0;

    public UserRecord? FindUser(string name) => _users.FindById(name);

    public IReadOnlyList<UserRecord> Users() => _users.FindAll().OrderBy(u => u.Name, StringComparer.Ordinal).ToList();

    public bool TryAddUser(UserRecord user)
    {
        lock (_gate)
        {
            if (_users.FindById(user.Name) is not null) return false;
            _users.Insert(user);
            return true;
        }
    }

    public UserRecord? UpdateUser(string name, Action<UserRecord> change)
    {
        lock (_gate)
        {
            if (_users.FindById(name) is not { } user) return null;
            change(user);
            _users.Update(user);
            return user;
        }
    }

    public bool RemoveUser(string name)
    {
        lock (_gate)
        {
            _keys.DeleteMany(k => k.UserName == name);
            return _users.Delete(name);
        }
    }

    public void AddKey(ApiKeyRecord key) => _keys.Insert(key);

    public ApiKeyRecord? FindKey(string id) => _keys.FindById(id);

    public IReadOnlyList<ApiKeyRecord> Keys(string userName) =>
        _keys.Find(k => k.UserName == userName).OrderBy(k => k.CreatedAt).ThenBy(k => k.Id, StringComparer.Ordinal).ToList();

    public bool RevokeKey(string userName, string id, DateTime at)
    {
        lock (_gate)
        {
            if (_keys.FindById(id) is not { RevokedAt: null } key || key.UserName != userName) return false;
            key.RevokedAt = at;
            return _keys.Update(key);
        }
    }

    public void TouchKey(string id, DateTime at)
    {
        lock (_gate)
        {
            if (_keys.FindById(id) is not { } key) return;
            key.LastUsedAt = at;
            _keys.Update(key);
        }
    }
}
