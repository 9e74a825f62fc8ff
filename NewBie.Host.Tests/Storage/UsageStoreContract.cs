using NewBie.Host.Accounts;

namespace NewBie.Host.Tests.Storage;

/// <summary>What every <see cref="IUsageStore"/> does (see <see cref="StoreContract{TStore}"/> for how to run it on another one).</summary>
public abstract class UsageStoreContract(Func<IUsageStore> factory, IDisposable? resources) : StoreContract<IUsageStore>(factory, resources)
{
    private static DateTime Day(int day) => new(2026, 3, day, 0, 0, 0, DateTimeKind.Utc);

    [SkippableFact]
    public void Charges_add_up_per_user_and_day()
    {
        Assert.Equal(0, Store.Used("alice", Day(1)));
        Assert.True(Store.TryCharge("alice", Day(1), 3, limit: 10));
        Assert.True(Another().TryCharge("alice", Day(1), 4, limit: 10));
        Assert.True(Store.TryCharge("alice", Day(2), 1, limit: 10));
        Assert.True(Store.TryCharge("bob", Day(1), 2, limit: 10));

        Assert.Equal(7, Store.Used("alice", Day(1)));
        Assert.Equal(1, Store.Used("alice", Day(2)));
        Assert.Equal(2, Another().Used("bob", Day(1)));
    }

    [SkippableFact]
    public void A_charge_may_reach_the_limit_but_one_that_would_pass_it_is_refused_whole()
    {
        Assert.True(Store.TryCharge("alice", Day(1), 8, limit: 10));
        Assert.False(Store.TryCharge("alice", Day(1), 3, limit: 10));
        Assert.Equal(8, Store.Used("alice", Day(1)));
        Assert.True(Store.TryCharge("alice", Day(1), 2, limit: 10));
        Assert.False(Store.TryCharge("alice", Day(1), 1, limit: 10));
        Assert.Equal(10, Store.Used("alice", Day(1)));
    }

    [SkippableFact]
    public void A_zero_limit_refuses_any_image_and_creates_no_counter()
    {
        Assert.False(Store.TryCharge("alice", Day(1), 1, limit: 0));
        Assert.Equal(0, Store.Used("alice", Day(1)));
        Assert.Empty(Store.Since(Day(1)));
    }

    [SkippableFact]
    public void A_refund_gives_back_images_of_the_day_charged_and_never_goes_below_zero()
    {
        Store.TryCharge("alice", Day(1), 5, limit: 10);
        Store.TryCharge("alice", Day(2), 5, limit: 10);

        Another().Refund("alice", Day(1), 2);
        Assert.Equal(3, Store.Used("alice", Day(1)));
        Assert.Equal(5, Store.Used("alice", Day(2)));

        Store.Refund("alice", Day(1), 9);
        Assert.Equal(0, Store.Used("alice", Day(1)));
        Store.Refund("nobody", Day(1), 1);
        Assert.Equal(0, Store.Used("nobody", Day(1)));
        Assert.True(Store.TryCharge("alice", Day(1), 10, limit: 10));
    }

    [SkippableFact]
    public void Concurrent_charges_from_two_instances_never_pass_the_limit()
    {
        var stores = new[] { Store, Another() };
        var accepted = 0;
        Parallel.For(0, 200, new ParallelOptions { MaxDegreeOfParallelism = 4 }, i =>
        {
            if (stores[i % 2].TryCharge("alice", Day(1), 1, limit: 150)) Interlocked.Increment(ref accepted);
        });
        Assert.Equal(150, accepted);
        Assert.Equal(150, Store.Used("alice", Day(1)));
    }

    [SkippableFact]
    public void Two_instances_charging_the_last_image_at_once_exactly_one_wins()
    {
        Store.TryCharge("alice", Day(1), 10, limit: 10);
        var stores = new[] { Store, Another() };
        for (var round = 0; round < 20; round++)
        {
            Store.Refund("alice", Day(1), 1);
            using var start = new Barrier(2);
            var charges = stores.Select(store => Task.Factory.StartNew(() =>
            {
                start.SignalAndWait();
                return store.TryCharge("alice", Day(1), 1, limit: 10);
            }, TaskCreationOptions.LongRunning)).ToArray();
            Assert.Equal(1, charges.Count(c => c.Result));
            Assert.Equal(10, Store.Used("alice", Day(1)));
        }
    }

    [SkippableFact]
    public void Since_lists_counters_from_that_day_by_day_then_user()
    {
        Store.TryCharge("bob", Day(3), 1, limit: 10);
        Store.TryCharge("alice", Day(3), 2, limit: 10);
        Store.TryCharge("Zed", Day(2), 3, limit: 10);
        Store.TryCharge("alice", Day(1), 4, limit: 10);

        var rows = Another().Since(Day(2));
        Assert.Equal([("Zed", Day(2), 3), ("alice", Day(3), 2), ("bob", Day(3), 1)], rows.Select(r => (r.UserName, r.Day, r.ImagesRequested)));
        Assert.All(rows, r => Assert.Equal(DateTimeKind.Utc, r.Day.Kind));
    }
}
