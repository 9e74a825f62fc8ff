using NewBie.Host.HangfireStorage;

namespace NewBie.Host.Tests.HangfireStorage;

public sealed class FairQueueIndexTests
{
    private static List<string> Pending(FairQueueIndex index) => index.Snapshot().Pending.Select(e => e.JobId).ToList();

    [Fact]
    public void A_removed_job_leaves_the_order_and_the_others_keep_theirs_even_after_a_priority_change_moved_its_row()
    {
        var changes = 0;
        var index = new FairQueueIndex(() => changes++);
        index.Load([(1, new FairQueueEntry("a", "A", 1, 1)), (2, new FairQueueEntry("b", "B", 1, 2)), (3, new FairQueueEntry("c", "A", 1, 3))], [], 0);
        index.SetPriority(3, 2);
        // A was served by c, its high-priority job, by the time a normal class is reached: B goes first.
        Assert.Equal(["c", "b", "a"], Pending(index));

        var before = (index.Version, changes);
        index.RemoveJob("c");
        index.RemoveJob("a");

        Assert.Equal(["b"], Pending(index));
        Assert.Equal(2, index.Next());
        Assert.Equal((before.Version + 2, before.changes + 2), (index.Version, changes));
    }

    [Fact]
    public void Removing_a_job_the_queue_does_not_hold_changes_nothing()
    {
        var changes = 0;
        var index = new FairQueueIndex(() => changes++);
        index.Add(1, new FairQueueEntry("a", "A", 1, 1));
        index.Claimed(1, 1);
        var version = index.Version;

        index.RemoveJob("a");
        index.RemoveJob("never");

        Assert.Equal(version, index.Version);
        Assert.Equal(2, changes);
        Assert.Empty(Pending(index));
    }
}
