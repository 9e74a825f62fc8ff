using LiteDB;

namespace NewBie.Host.Accounts;

/// <summary>
/// Server-side sign-in sessions (the cookie names one): a session ends when its record goes, so logout, a password
/// change or a user's removal can end sessions everywhere at once. Its contract is
/// <c>NewBie.Host.Tests.Storage.SessionStoreContract</c>.
/// </summary>
public interface ISessionStore
{
    /// <summary>Adds a new session; its id must be new (ids are random, 128 bits or more).</summary>
    void Add(SessionRecord session);

    /// <summary>The session, or null when unknown, removed, or expired at <paramref name="now"/>.</summary>
    SessionRecord? Find(string id, DateTime now);

    /// <summary>Moves a live session's expiry (sliding sessions) and last-seen time; false when it is gone.</summary>
    bool Extend(string id, DateTime lastSeenAt, DateTime expiresAt);

    /// <summary>Ends one session; false when it was already gone.</summary>
    bool Remove(string id);

    /// <summary>Ends every session of the user; how many there were.</summary>
    int RemoveAll(string userName);

    /// <summary>The user's live sessions at <paramref name="now"/>, oldest first.</summary>
    IReadOnlyList<SessionRecord> Sessions(string userName, DateTime now);

    /// <summary>Deletes the records of sessions expired at <paramref name="now"/> (housekeeping); how many.</summary>
    int RemoveExpired(DateTime now);
}

/// <summary>One signed-in browser. The id is a bearer secret carried only inside the protected cookie.</summary>
public sealed class SessionRecord
{
    [BsonId] public string Id { get; set; } = "";
    public string UserName { get; set; } = "";
    public DateTime CreatedAt { get; set; }
    public DateTime LastSeenAt { get; set; }
    public DateTime ExpiresAt { get; set; }
}
