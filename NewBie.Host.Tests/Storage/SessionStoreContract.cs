using NewBie.Host.Accounts;

namespace NewBie.Host.Tests.Storage;

/// <summary>What every <see cref="ISessionStore"/> does (see <see cref="StoreContract{TStore}"/> for how to run it on another one).</summary>
public abstract class SessionStoreContract(Func<ISessionStore> factory, IDisposable? resources) : StoreContract<ISessionStore>(factory, resources)
{
    private static SessionRecord Session(string id, string user, int createdDay = 1, int expiresDay = 10) =>
        new() { Id = id, UserName = user, CreatedAt = At(createdDay), LastSeenAt = At(createdDay), ExpiresAt = At(expiresDay) };

    [Fact]
    public void An_added_session_is_found_by_its_id_with_every_field()
    {
        var session = Session("s-Abc", "alice");
        Store.Add(session);

        var found = Another().Find("s-Abc", At(2))!;
        Assert.Equivalent(session, found, strict: true);
        Assert.Equal(DateTimeKind.Utc, found.ExpiresAt.Kind);
        Assert.Null(Store.Find("unknown", At(2)));
    }

    [Fact]
    public void A_session_is_not_found_from_the_instant_it_expires()
    {
        Store.Add(Session("s1", "alice", expiresDay: 5));
        Assert.NotNull(Store.Find("s1", At(5).AddTicks(-TimeSpan.TicksPerSecond)));
        Assert.Null(Store.Find("s1", At(5)));
        Assert.Empty(Store.Sessions("alice", At(5)));
    }

    [Fact]
    public void Extending_moves_expiry_and_last_seen_of_a_live_session_only()
    {
        Store.Add(Session("s1", "alice", expiresDay: 5));

        Assert.True(Another().Extend("s1", At(4), At(8)));
        var found = Store.Find("s1", At(6))!;
        Assert.Equal(At(4), found.LastSeenAt);
        Assert.Equal(At(8), found.ExpiresAt);
        Assert.Equal(At(1), found.CreatedAt);
        Assert.False(Store.Extend("gone", At(4), At(8)));
        Assert.Null(Store.Find("gone", At(4)));
    }

    [Fact]
    public void Removing_one_session_leaves_the_users_others()
    {
        Store.Add(Session("s1", "alice"));
        Store.Add(Session("s2", "alice"));

        Assert.True(Another().Remove("s1"));
        Assert.False(Store.Remove("s1"));
        Assert.Null(Store.Find("s1", At(2)));
        Assert.NotNull(Store.Find("s2", At(2)));
    }

    [Fact]
    public void Removing_all_of_a_users_sessions_ends_them_everywhere_and_spares_other_users()
    {
        Store.Add(Session("a1", "alice"));
        Store.Add(Session("a2", "alice"));
        Store.Add(Session("b1", "bob"));
        var otherNode = Another();

        Assert.Equal(2, otherNode.RemoveAll("alice"));

        Assert.Null(Store.Find("a1", At(2)));
        Assert.Null(Store.Find("a2", At(2)));
        Assert.NotNull(Store.Find("b1", At(2)));
        Assert.Equal(0, Store.RemoveAll("alice"));
    }

    [Fact]
    public void A_users_sessions_are_listed_live_only_oldest_first()
    {
        Store.Add(Session("late", "alice", createdDay: 3));
        Store.Add(Session("early", "alice", createdDay: 1));
        Store.Add(Session("expired", "alice", createdDay: 2, expiresDay: 4));
        Store.Add(Session("bobs", "bob"));

        Assert.Equal(["early", "late"], Store.Sessions("alice", At(5)).Select(s => s.Id));
        Assert.Equal(["early", "expired", "late"], Store.Sessions("alice", At(3)).Select(s => s.Id));
    }

    [Fact]
    public void Removing_expired_sessions_deletes_exactly_those_expired_at_that_instant()
    {
        Store.Add(Session("old", "alice", expiresDay: 3));
        Store.Add(Session("edge", "bob", expiresDay: 4));
        Store.Add(Session("live", "alice", expiresDay: 9));

        Assert.Equal(2, Store.RemoveExpired(At(4)));
        Assert.Equal(["live"], Store.Sessions("alice", At(1)).Select(s => s.Id));
        Assert.Empty(Store.Sessions("bob", At(1)));
    }
}
