using NewBie.JobStorage;

namespace NewBie.Host.Tests.JobStorage;

public sealed class FairOrderTests
{
    private static readonly Dictionary<string, long> Nobody = new();

    [Fact]
    public void A_flooding_user_does_not_make_others_wait_behind_all_their_jobs()
    {
        var pending = Enumerable.Range(0, 10).Select(i => new FairQueueEntry($"a{i}", "A", 1, i)).ToList();
        pending.Add(new("b0", "B", 1, 10));
        pending.Add(new("b1", "B", 1, 11));
        pending.Add(new("c0", "C", 1, 12));
        pending.Add(new("c1", "C", 1, 13));

        var order = FairOrder.Order(pending, Nobody, 0).Select(e => e.JobId).ToList();

        Assert.Equal(new[] { "a0", "b0", "c0", "a1", "b1", "c1", "a2", "a3" }, order.Take(8));
        Assert.True(order.IndexOf("c1") < order.IndexOf("a3"));
    }

    [Fact]
    public void Higher_priority_class_runs_first_then_round_robin_then_fifo()
    {
        var pending = new List<FairQueueEntry>
        {
            new("a-low", "A", 0, 1), new("b-normal", "B", 1, 2), new("a-high", "A", 2, 3), new("c-high", "C", 2, 4), new("a-high2", "A", 2, 5),
        };
        var order = FairOrder.Order(pending, Nobody, 0).Select(e => e.JobId);
        Assert.Equal(new[] { "a-high", "c-high", "a-high2", "b-normal", "a-low" }, order);
    }

    [Fact]
    public void Least_recently_served_user_goes_first()
    {
        var pending = new List<FairQueueEntry> { new("a", "A", 1, 1), new("b", "B", 1, 2) };
        var served = new Dictionary<string, long> { ["A"] = 7, ["B"] = 3 };
        Assert.Equal("b", FairOrder.PickNext(pending, served)!.JobId);
        Assert.Null(FairOrder.PickNext([], served));
    }
}
