namespace NewBie.Pipeline.Tests;

/// <summary>CI runs with NEWBIE_REQUIRE_FIXTURES=1 (.ci/run): a fixture kind that is absent must fail, not skip.</summary>
[Trait("Category", "Parity")]
public sealed class FixtureSetTests
{
    [Fact]
    public void Every_fixture_kind_is_present_when_fixtures_are_required()
    {
        if (!Fixtures.Required) return;
        var missing = Fixtures.AllKinds.Where(k => !Directory.Exists(Path.Combine(Fixtures.Root, k))).ToList();
        Assert.True(missing.Count == 0, $"NEWBIE_REQUIRE_FIXTURES=1 but {Fixtures.Root} lacks: {string.Join(", ", missing)}");
    }
}
