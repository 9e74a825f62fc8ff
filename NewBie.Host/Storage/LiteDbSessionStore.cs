using LiteDB;
using NewBie.Host.Accounts;

namespace NewBie.Host.Storage;

/// <summary>Sign-in sessions in the app database, indexed by user (to end them all) and expiry (housekeeping).</summary>
public sealed class LiteDbSessionStore : ISessionStore
{
    private readonly ILiteCollection<SessionRecord> _sessions;
    private readonly Lock _gate;

    public LiteDbSessionStore(AppDatabase database)
    {
        _gate = database.Gate;
        _sessions = database.Collection<SessionRecord>("sessions");
        _sessions.EnsureIndex(s => s.UserName);
        _sessions.EnsureIndex(s => s.ExpiresAt);
    }

    public void Add(SessionRecord session) => _sessions.Insert(session);

    public SessionRecord? Find(string id, DateTime now) => _sessions.FindById(id) is { } s && s.ExpiresAt > now ? s : null;

    public bool Extend(string id, DateTime lastSeenAt, DateTime expiresAt)
    {
        lock (_gate)
        {
            if (_sessions.FindById(id) is not { } session) return false;
            session.LastSeenAt = lastSeenAt;
            session.ExpiresAt = expiresAt;
            return _sessions.Update(session);
        }
    }

    public bool Remove(string id)
    {
        lock (_gate) return _sessions.Delete(id);
    }

    public int RemoveAll(string userName)
    {
        lock (_gate) return _sessions.DeleteMany(s => s.UserName == userName);
    }

    public IReadOnlyList<SessionRecord> Sessions(string userName, DateTime now) =>
        _sessions.Find(s => s.UserName == userName && s.ExpiresAt > now).OrderBy(s => s.CreatedAt).ThenBy(s => s.Id, StringComparer.Ordinal).ToList();

    public int RemoveExpired(DateTime now)
    {
        lock (_gate) return _sessions.DeleteMany(s => s.ExpiresAt <= now);
    }
}
