namespace NewBie.Pipeline.Tests;

/// <summary>
/// A parity theory over fixture kinds that is reported as skipped when a kind it needs is absent. xunit 2 fails a
/// theory whose member data yields no rows ("No data found"), so <see cref="Fixtures.Folders"/> alone cannot
/// make an absent kind a skip (design.md §9: absent kinds are skipped, present kinds must pass). With
/// <c>NEWBIE_REQUIRE_FIXTURES=1</c> nothing is skipped: a test of an absent kind runs and fails.
/// </summary>
public sealed class FixtureTheoryAttribute : TheoryAttribute
{
    public FixtureTheoryAttribute(params string[] kinds)
    {
        var missing = kinds.Where(k => !Directory.Exists(Path.Combine(Fixtures.Root, k))).ToArray();
        if (missing.Length > 0 && !Fixtures.Required) Skip = $"fixture kind {string.Join(", ", missing)} is not in {Fixtures.Root}";
    }
}
