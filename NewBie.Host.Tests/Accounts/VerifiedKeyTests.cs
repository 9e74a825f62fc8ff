using Microsoft.Extensions.Options;
using NewBie.Host.Accounts;
using NewBie.Host.Storage;
using NewBie.Host.Tests.Storage;

namespace NewBie.Host.Tests.Accounts;

/// <summary>
/// A key verified once is checked again without reading the user store (a status read's two reads), a user read once is
/// not read again (a submit's limits), and every change that can end a key's use or change a user reaches the next
/// request: revoke, the user's removal, a role or limit change.
/// </summary>
public sealed class VerifiedKeyTests : IDisposable
{
    private readonly LiteDbTestDatabase _db = new();
    private readonly CountingUserStore _users;
    private readonly AccountStore _accounts;

    public VerifiedKeyTests()
    {
        _users = new CountingUserStore(new LiteDbUserStore(_db.Database));
        _accounts = Accounts(_users);
    }

    public void Dispose() => _db.Dispose();

    [Fact]
    public void A_known_key_is_checked_without_reading_the_store_again()
    {
        _accounts.AddUser("alice", Roles.User, password: null);
        var (key, _) = _accounts.CreateKey("alice", null);
        (_users.KeyReads, _users.UserReads) = (0, 0);

        for (var i = 0; i < 50; i++) Assert.Equal("alice", _accounts.Authenticate(key)?.User.Name);

        // The key once; its owner not at all (read when the key was created, and known since).
        Assert.Equal((1, 0), (_users.KeyReads, _users.UserReads));
    }

    [Fact]
    public void A_user_is_read_once_and_read_again_after_each_change()
    {
        _accounts.AddUser("alice", Roles.User, password: null);
        _users.UserReads = 0;

        for (var i = 0; i < 50; i++) Assert.Equal("alice", _accounts.FindUser("alice")?.Name);
        Assert.Equal(1, _users.UserReads);

        _accounts.UpdateUser("alice", u => u.MaxQueuedJobs = 3);
        Assert.Equal(3, _accounts.FindUser("alice")?.MaxQueuedJobs);
        Assert.True(_accounts.RemoveUser("alice"));
        Assert.Null(_accounts.FindUser("alice"));
        Assert.Null(_accounts.FindUser("alice"));
        Assert.Equal(4, _users.UserReads);
    }

    [Fact]
    public void A_read_of_a_user_that_began_before_a_change_does_not_keep_the_old_record()
    {
        _accounts.AddUser("alice", Roles.User, password: null);
        _users.AfterUserRead = () =>
        {
            _users.AfterUserRead = null;
            _accounts.UpdateUser("alice", u => u.MaxQueuedJobs = 3);
        };

        Assert.Null(_accounts.FindUser("alice")?.MaxQueuedJobs);
        Assert.Equal(3, _accounts.FindUser("alice")?.MaxQueuedJobs);
    }

    [Fact]
    public void A_known_keys_id_with_another_secret_is_refused()
    {
        _accounts.AddUser("alice", Roles.User, password: null);
        var (key, _) = _accounts.CreateKey("alice", null);
        Assert.NotNull(_accounts.Authenticate(key));

        Assert.Null(_accounts.Authenticate($"{key[..^4]}AAAA"));
        Assert.NotNull(_accounts.Authenticate(key));
    }

    [Fact]
    public void A_used_key_stops_working_at_once_when_revoked_or_its_user_removed()
    {
        _accounts.AddUser("alice", Roles.User, password: null);
        _accounts.AddUser("bob", Roles.User, password: null);
        var (alice, aliceKey) = _accounts.CreateKey("alice", null);
        var (bob, _) = _accounts.CreateKey("bob", null);
        Assert.NotNull(_accounts.Authenticate(alice));
        Assert.NotNull(_accounts.Authenticate(bob));

        Assert.True(_accounts.RevokeKey("alice", aliceKey.Id));
        Assert.True(_accounts.RemoveUser("bob"));

        Assert.Null(_accounts.Authenticate(alice));
        Assert.Null(_accounts.Authenticate(bob));
    }

    [Fact]
    public void A_demoted_admins_key_is_a_users_key_from_the_next_request()
    {
        _accounts.AddUser("boss", Roles.Admin, password: null);
        var (key, _) = _accounts.CreateKey("boss", null);
        Assert.True(_accounts.Authenticate(key)?.User.IsAdmin);

        _accounts.UpdateUser("boss", u => u.Role = Roles.User);

        Assert.False(_accounts.Authenticate(key)?.User.IsAdmin);
    }

    [Fact]
    public void A_read_that_began_before_a_revoke_does_not_keep_the_key()
    {
        _accounts.AddUser("alice", Roles.User, password: null);
        var (key, record) = _accounts.CreateKey("alice", null);
        // The revoke lands after the key was read as valid and before that read's answer could be kept.
        _users.AfterKeyRead = () =>
        {
            _users.AfterKeyRead = null;
            Assert.True(_accounts.RevokeKey("alice", record.Id));
        };

        Assert.NotNull(_accounts.Authenticate(key));
        Assert.Null(_accounts.Authenticate(key));
    }

    [Fact]
    public void A_store_that_other_processes_change_is_read_on_every_request()
    {
        var shared = new CountingUserStore(new LiteDbUserStore(_db.Database), shared: true);
        var accounts = Accounts(shared);
        accounts.AddUser("alice", Roles.User, password: null);
        var (key, _) = accounts.CreateKey("alice", null);

        shared.UserReads = 0;
        for (var i = 0; i < 5; i++)
        {
            Assert.NotNull(accounts.Authenticate(key));
            Assert.NotNull(accounts.FindUser("alice"));
        }

        Assert.Equal(5, shared.KeyReads);
        Assert.Equal(10, shared.UserReads);
    }

    private AccountStore Accounts(IUserStore users) =>
        new(users, new LiteDbUsageStore(_db.Database), Options.Create(new AccountsOptions()), TimeProvider.System);

    private sealed class CountingUserStore(IUserStore inner, bool shared = false) : IUserStore
    {
        public int KeyReads, UserReads;

        public Action? AfterKeyRead { get; set; }

        public Action? AfterUserRead { get; set; }

        public bool SharedWithOtherProcesses => shared;

        public bool AnyUsers() => inner.AnyUsers();

        public UserRecord? FindUser(string name)
        {
            Interlocked.Increment(ref UserReads);
            var user = inner.FindUser(name);
            AfterUserRead?.Invoke();
            return user;
        }

        public IReadOnlyList<UserRecord> Users() => inner.Users();

        public bool TryAddUser(UserRecord user) => inner.TryAddUser(user);

        public UserRecord? UpdateUser(string name, Action<UserRecord> change) => inner.UpdateUser(name, change);

        public bool RemoveUser(string name) => inner.RemoveUser(name);

        public void AddKey(ApiKeyRecord key) => inner.AddKey(key);

        public ApiKeyRecord? FindKey(string id)
        {
            Interlocked.Increment(ref KeyReads);
            var key = inner.FindKey(id);
            AfterKeyRead?.Invoke();
            return key;
        }

        public IReadOnlyList<ApiKeyRecord> Keys(string userName) => inner.Keys(userName);

        public bool RevokeKey(string userName, string id, DateTime at) => inner.RevokeKey(userName, id, at);

        public void TouchKey(string id, DateTime at) => inner.TouchKey(id, at);
    }
}
