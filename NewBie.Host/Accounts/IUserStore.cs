namespace NewBie.Host.Accounts;

/// <summary>
/// Users and their API keys as stored. Only persistence: the rules (valid names, password and key hashing, what a
/// default means) live in <see cref="AccountStore"/>, so that every implementation (LiteDB, PostgreSQL) shares them.
/// Its contract is <c>NewBie.Host.Tests.Storage.UserStoreContract</c>.
/// </summary>
public interface IUserStore
{
    /// <summary>
    /// Whether other processes change these records too (PostgreSQL: other nodes and the command-line verbs). Where
    /// they do not, <see cref="AccountStore"/> is the only writer and may keep what it verified in memory.
    /// </summary>
    bool SharedWithOtherProcesses => false;

    bool AnyUsers();

    UserRecord? FindUser(string name);

    /// <summary>Every user, ordered by name (ordinal).</summary>
    IReadOnlyList<UserRecord> Users();

    /// <summary>Adds the user; false, changing nothing, when a user of that name exists.</summary>
    bool TryAddUser(UserRecord user);

    /// <summary>
    /// Reads the user, applies <paramref name="change"/> and saves it as one step (no other update in between); null
    /// when no such user. An exception thrown by <paramref name="change"/> saves nothing.
    /// </summary>
    UserRecord? UpdateUser(string name, Action<UserRecord> change);

    /// <summary>Removes the user and all their keys; false when no such user.</summary>
    bool RemoveUser(string name);

    void AddKey(ApiKeyRecord key);

    ApiKeyRecord? FindKey(string id);

    /// <summary>The user's keys, revoked ones included, oldest first.</summary>
    IReadOnlyList<ApiKeyRecord> Keys(string userName);

    /// <summary>Marks the user's unrevoked key revoked at <paramref name="at"/>; false when it is not theirs, unknown or already revoked.</summary>
    bool RevokeKey(string userName, string id, DateTime at);

    /// <summary>Sets the key's last-used time (callers decide how often: a write per request would cost more than the request).</summary>
    void TouchKey(string id, DateTime at);
}
