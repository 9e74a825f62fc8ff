using System.Reflection;
using Xunit.Abstractions;
using Xunit.Sdk;

[assembly: TestCollectionOrderer("NewBie.Host.Tests.LongestFirstOrderer", "NewBie.Host.Tests")]

namespace NewBie.Host.Tests;

/// <summary>A test class (or collection definition) that takes tens of seconds: started before the others.</summary>
[AttributeUsage(AttributeTargets.Class)]
public sealed class LongRunningAttribute : Attribute;

/// <summary>
/// Starts the collections of classes marked <see cref="LongRunningAttribute"/> first, the rest after them in xunit's
/// own order. xunit runs as many collections at once as there are cores (two on CI); a class of a minute that happened
/// to start last kept one of them busy alone for that minute at the end of the run. The order is kept by
/// <see cref="InOrderTestFramework"/> (xunit's own runner lets the collections take the slots in any order).
/// </summary>
public sealed class LongestFirstOrderer : ITestCollectionOrderer
{
    private const string PerClassPrefix = "Test collection for ";

    private static readonly HashSet<string> LongNames = [.. typeof(LongestFirstOrderer).Assembly.GetTypes()
        .Where(t => t.GetCustomAttribute<LongRunningAttribute>() is not null)
        .Select(t => t.FullName!)];

    private readonly DefaultTestCollectionOrderer _default = new();

    public IEnumerable<ITestCollection> OrderTestCollections(IEnumerable<ITestCollection> testCollections)
    {
        var ordered = _default.OrderTestCollections(testCollections).ToList();
        return [.. ordered.Where(IsLong), .. ordered.Where(c => !IsLong(c))];
    }

    // A collection of its own per class is named after the class; a shared one has its definition's type.
    private static bool IsLong(ITestCollection collection) =>
        collection.CollectionDefinition is { } definition
            ? LongNames.Contains(definition.Name)
            : collection.DisplayName.StartsWith(PerClassPrefix, StringComparison.Ordinal)
              && LongNames.Contains(collection.DisplayName[PerClassPrefix.Length..].Split(' ')[0]);
}
