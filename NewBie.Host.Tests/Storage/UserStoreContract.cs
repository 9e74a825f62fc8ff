using NewBie.Host.Accounts;

namespace NewBie.Host.Tests.Storage;

/// <summary>What every <see cref="IUserStore"/> does (see <see cref="StoreContract{TStore}"/> for how to run it on another one).</summary>
public abstract class UserStoreContract(Func<IUserStore> factory, IDisposable? resources) : StoreContract<IUserStore>(factory, resources)
{
    private static UserRecord User(string name, string role = Roles.User) => new() { Name = name, Role = role, CreatedAt = At(1) };

    private static ApiKeyRecord Key(string id, string user, int day = 1) =>
        new() { Id = id, UserName = user, Name = "laptop", Hash = [1, 2, 3, 4], CreatedAt = At(day) };

    [SkippableFact]
    public void A_new_store_has_no_users()
    {
        Assert.False(Store.AnyUsers());
        Assert.Empty(Store.Users());
        Assert.Null(Store.FindUser("alice"));
    }

    [SkippableFact]
    public void An_added_user_round_trips_every_field()
    {
        var alice = new UserRecord
        {
            Name = "alice", Role = Roles.Admin, PasswordHash = "AQAAAAIA hash", PriorityClass = "high", MaxQueuedJobs = 3, ImagesPerDay = 40,
            MaxPixels = 1_048_576, MaxSteps = 50, MaxCount = 4, CreatedAt = At(2, 8, 30),
        };
        Assert.True(Store.TryAddUser(alice));

        var found = Another().FindUser("alice")!;
        Assert.True(Store.AnyUsers());
        Assert.Equivalent(alice, found, strict: true);
        Assert.Equal(DateTimeKind.Utc, found.CreatedAt.Kind);
    }

    [SkippableFact]
    public void Names_keep_their_symbols_exact()
    {
        Assert.True(Store.TryAddUser(User("o'brien@studio.example")));
        Assert.True(Store.TryAddUser(User("bob.smith_2")));
        Assert.Equal(["bob.smith_2", "o'brien@studio.example"], Store.Users().Select(u => u.Name));
        Assert.Null(Store.FindUser("bob.smith_"));
    }

    [SkippableFact]
    public void Adding_a_name_that_exists_is_refused_and_changes_nothing()
    {
        Store.TryAddUser(User("alice", Roles.Admin));
        Assert.False(Another().TryAddUser(User("alice", Roles.User)));
        Assert.Equal(Roles.Admin, Store.FindUser("alice")!.Role);
        Assert.Single(Store.Users());
    }

    [SkippableFact]
    public void Users_are_listed_by_name_in_ordinal_order()
    {
        foreach (var name in new[] { "carol", "Zed", "alice", "bob" }) Store.TryAddUser(User(name));
        Assert.Equal(["Zed", "alice", "bob", "carol"], Store.Users().Select(u => u.Name));
    }

    [SkippableFact]
    public void Update_saves_the_change_and_returns_the_saved_user()
    {
        Store.TryAddUser(User("alice"));
        var updated = Store.UpdateUser("alice", u => { u.Role = Roles.Admin; u.ImagesPerDay = 7; u.PriorityClass = null; });

        Assert.Equal(Roles.Admin, updated!.Role);
        var found = Another().FindUser("alice")!;
        Assert.Equal(Roles.Admin, found.Role);
        Assert.Equal(7, found.ImagesPerDay);
    }

    [SkippableFact]
    public void Update_of_an_unknown_user_is_null_and_never_calls_the_change()
    {
        var called = false;
        Assert.Null(Store.UpdateUser("ghost", _ => called = true));
        Assert.False(called);
        Assert.False(Store.AnyUsers());
    }

    [SkippableFact]
    public void A_change_that_throws_saves_nothing()
    {
        Store.TryAddUser(User("alice"));
        Assert.Throws<AccountException>(() => Store.UpdateUser("alice", u =>
        {
            u.Role = Roles.Admin;
            throw new AccountException("refused");
        }));
        Assert.Equal(Roles.User, Another().FindUser("alice")!.Role);
    }

    [SkippableFact]
    public void Concurrent_updates_of_one_user_from_two_instances_lose_none()
    {
        Store.TryAddUser(new UserRecord { Name = "alice", MaxQueuedJobs = 0, CreatedAt = At(1) });
        var stores = new[] { Store, Another() };
        Parallel.For(0, 200, new ParallelOptions { MaxDegreeOfParallelism = 4 }, i =>
            stores[i % 2].UpdateUser("alice", u => u.MaxQueuedJobs = u.MaxQueuedJobs!.Value + 1));
        Assert.Equal(200, Store.FindUser("alice")!.MaxQueuedJobs);
    }

    [SkippableFact]
    public void Removing_a_user_removes_their_keys_and_no_one_elses()
    {
        Store.TryAddUser(User("alice"));
        Store.TryAddUser(User("bob"));
        Store.AddKey(Key("k1", "alice"));
        Store.AddKey(Key("k2", "bob"));

        Assert.True(Another().RemoveUser("alice"));

        Assert.Null(Store.FindUser("alice"));
        Assert.Null(Store.FindKey("k1"));
        Assert.Empty(Store.Keys("alice"));
        Assert.NotNull(Store.FindKey("k2"));
        Assert.False(Store.RemoveUser("alice"));
    }

    [SkippableFact]
    public void A_key_round_trips_every_field_and_its_hash_bytes()
    {
        Store.TryAddUser(User("alice"));
        var key = Key("Ab3_x", "alice");
        key.Hash = [.. Enumerable.Range(0, 32).Select(i => (byte)(255 - i))];
        Store.AddKey(key);

        var found = Another().FindKey("Ab3_x")!;
        Assert.Equivalent(key, found, strict: true);
    }

    [SkippableFact]
    public void Keys_of_a_user_are_theirs_only_oldest_first_revoked_ones_included()
    {
        Store.TryAddUser(User("alice"));
        Store.TryAddUser(User("bob"));
        Store.AddKey(Key("k3", "alice", day: 3));
        Store.AddKey(Key("k1", "alice", day: 1));
        Store.AddKey(Key("kb", "bob", day: 2));
        Store.AddKey(Key("k2", "alice", day: 2));
        Store.RevokeKey("alice", "k2", At(4));

        Assert.Equal(["k1", "k2", "k3"], Store.Keys("alice").Select(k => k.Id));
        Assert.Equal(["kb"], Store.Keys("bob").Select(k => k.Id));
        Assert.Empty(Store.Keys("carol"));
    }

    [SkippableFact]
    public void Revoking_marks_the_key_once_and_only_for_its_owner()
    {
        Store.TryAddUser(User("alice"));
        Store.TryAddUser(User("bob"));
        Store.AddKey(Key("k1", "alice"));

        Assert.False(Store.RevokeKey("bob", "k1", At(2)));
        Assert.Null(Store.FindKey("k1")!.RevokedAt);
        Assert.False(Store.RevokeKey("alice", "missing", At(2)));

        Assert.True(Store.RevokeKey("alice", "k1", At(2)));
        Assert.Equal(At(2), Another().FindKey("k1")!.RevokedAt);
        Assert.False(Store.RevokeKey("alice", "k1", At(3)));
        Assert.Equal(At(2), Store.FindKey("k1")!.RevokedAt);
    }

    [SkippableFact]
    public void Touching_a_key_sets_its_last_used_time_and_nothing_else()
    {
        Store.TryAddUser(User("alice"));
        var key = Key("k1", "alice");
        Store.AddKey(key);

        Another().TouchKey("k1", At(5, 9, 15));
        Store.TouchKey("missing", At(5));

        var found = Store.FindKey("k1")!;
        Assert.Equal(At(5, 9, 15), found.LastUsedAt);
        Assert.Equal(key.Hash, found.Hash);
        Assert.Null(found.RevokedAt);
    }
}
