using NewBie.Host.Api;
using NewBie.Host.Jobs;

namespace NewBie.Host.Accounts;

/// <summary>/v1/admin/…: users, their keys and usage, for admins while the server runs (the CLI verbs do the same while it is stopped).</summary>
public static class AccountsAdminApi
{
    public sealed record UserDto(string Name, string Role, bool HasPassword, string? PriorityClass, int? MaxQueuedJobs, int? ImagesPerDay,
        int? MaxPixels, int? MaxSteps, int? MaxCount, DateTime CreatedAt);

    public sealed record KeyDto(string Id, string Name, DateTime CreatedAt, DateTime? LastUsedAt, DateTime? RevokedAt);

    public sealed record NewKeyDto(string Id, string Name, string Key);

    public sealed record UsageDto(string User, string Day, int ImagesRequested, int ImagesGenerated, double GpuSeconds);

    /// <summary>Body of POST (create) and PATCH (change) of a user: absent fields stay as they are.</summary>
    public sealed record UserChange(string? Name, string? Role, string? Password, string? PriorityClass, int? MaxQueuedJobs, int? ImagesPerDay,
        int? MaxPixels, int? MaxSteps, int? MaxCount);

    public sealed record KeyRequest(string? Name);

    public static RouteGroupBuilder MapAccountsAdmin(this IEndpointRouteBuilder routes)
    {
        var group = routes.MapGroup("/v1/admin").WithTags("Admin").RequireAuthorization(Policies.Admin);
        group.MapGet("/users", (AccountStore a) => TypedResults.Ok(a.Users().Select(ToDto)))
            .WithSummary("Every user").Produces<IEnumerable<UserDto>>().ProducesProblem(StatusCodes.Status401Unauthorized).ProducesProblem(StatusCodes.Status403Forbidden);
        group.MapPost("/users", Create).WithSummary("Create a user")
            .Produces<UserDto>(StatusCodes.Status201Created).ProducesProblem(StatusCodes.Status400BadRequest).ProducesProblem(StatusCodes.Status401Unauthorized).ProducesProblem(StatusCodes.Status403Forbidden);
        group.MapGet("/users/{name}", (string name, AccountStore a) => a.FindUser(name) is { } u ? TypedResults.Ok(ToDto(u)) : Problems.NotFound("user"))
            .WithSummary("One user").Produces<UserDto>().ProducesProblem(StatusCodes.Status401Unauthorized).ProducesProblem(StatusCodes.Status403Forbidden).ProducesProblem(StatusCodes.Status404NotFound);
        group.MapPatch("/users/{name}", Change).WithSummary("Change a user's role, password or limits")
            .Produces<UserDto>().ProducesProblem(StatusCodes.Status400BadRequest).ProducesProblem(StatusCodes.Status401Unauthorized).ProducesProblem(StatusCodes.Status403Forbidden).ProducesProblem(StatusCodes.Status404NotFound);
        group.MapDelete("/users/{name}", (string name, AccountStore a) => a.RemoveUser(name) ? TypedResults.NoContent() : Problems.NotFound("user"))
            .WithSummary("Remove a user and their keys").Produces(StatusCodes.Status204NoContent).ProducesProblem(StatusCodes.Status401Unauthorized).ProducesProblem(StatusCodes.Status403Forbidden).ProducesProblem(StatusCodes.Status404NotFound);
        group.MapGet("/users/{name}/keys", (string name, AccountStore a) =>
            a.FindUser(name) is null ? Problems.NotFound("user") : TypedResults.Ok(a.Keys(name).Select(ToDto)))
            .WithSummary("A user's API keys (never the secrets)").Produces<IEnumerable<KeyDto>>().ProducesProblem(StatusCodes.Status401Unauthorized).ProducesProblem(StatusCodes.Status403Forbidden).ProducesProblem(StatusCodes.Status404NotFound);
        group.MapPost("/users/{name}/keys", (string name, KeyRequest? body, AccountStore a) =>
            Try(() =>
            {
                var (key, record) = a.CreateKey(name, body?.Name);
                return TypedResults.Created($"/v1/admin/users/{name}/keys/{record.Id}", new NewKeyDto(record.Id, record.Name, key));
            }, notFound: a.FindUser(name) is null))
            .WithSummary("Issue an API key (the key is shown once)").Produces<NewKeyDto>(StatusCodes.Status201Created)
            .ProducesProblem(StatusCodes.Status400BadRequest).ProducesProblem(StatusCodes.Status401Unauthorized).ProducesProblem(StatusCodes.Status403Forbidden).ProducesProblem(StatusCodes.Status404NotFound);
        group.MapDelete("/users/{name}/keys/{id}", (string name, string id, AccountStore a) =>
            a.RevokeKey(name, id) ? TypedResults.NoContent() : Problems.NotFound("key"))
            .WithSummary("Revoke an API key").Produces(StatusCodes.Status204NoContent).ProducesProblem(StatusCodes.Status401Unauthorized).ProducesProblem(StatusCodes.Status403Forbidden).ProducesProblem(StatusCodes.Status404NotFound);
        group.MapGet("/usage", Usage).WithSummary("Images and GPU seconds per user and day")
            .Produces<IEnumerable<UsageDto>>().ProducesProblem(StatusCodes.Status400BadRequest).ProducesProblem(StatusCodes.Status401Unauthorized).ProducesProblem(StatusCodes.Status403Forbidden);
        return group;
    }

    private static IResult Create(UserChange body, AccountStore accounts) => Try(() =>
    {
        if (body.Name is null) return Problems.InvalidParameter("name", "name is required.");
        accounts.AddUser(body.Name, body.Role ?? Roles.User, body.Password);
        var user = accounts.UpdateUser(body.Name, u => Apply(u, body with { Password = null, Role = null }, accounts));
        return TypedResults.Created($"/v1/admin/users/{user.Name}", ToDto(user));
    });

    private static IResult Change(string name, UserChange body, AccountStore accounts) => Try(() =>
        TypedResults.Ok(ToDto(accounts.UpdateUser(name, u => Apply(u, body, accounts)))), notFound: accounts.FindUser(name) is null);

    /// <summary>Images and GPU seconds per user and UTC day, the last <paramref name="days"/> days (default 7).</summary>
    private static IResult Usage(AccountStore accounts, JobStore jobs, TimeProvider time, int? days)
    {
        var span = days ?? 7;
        if (span is < 1 or > 366) return Problems.InvalidParameter("days", "days must be 1-366.");
        return TypedResults.Ok(UsageRows(accounts, jobs, time.GetUtcNow().UtcDateTime.Date.AddDays(1 - span)));
    }

    /// <summary>Per user and UTC day from <paramref name="from"/>: images asked for (quota), images made and GPU seconds (finished jobs).</summary>
    internal static IReadOnlyList<UsageDto> UsageRows(AccountStore accounts, JobStore jobs, DateTime from)
    {
        var rows = new Dictionary<(string User, DateTime Day), UsageDto>();
        foreach (var u in accounts.Usage(from))
            rows[(u.UserName, u.Day)] = new UsageDto(u.UserName, Day(u.Day), u.ImagesRequested, 0, 0);
        foreach (var job in jobs.FinishedSince(from))
        {
            var day = job.FinishedAt!.Value.Date;
            var row = rows.GetValueOrDefault((job.UserId, day)) ?? new UsageDto(job.UserId, Day(day), 0, 0, 0);
            var gpu = job.StartedAt is { } started ? (job.FinishedAt.Value - started).TotalSeconds : 0;
            rows[(job.UserId, day)] = row with { ImagesGenerated = row.ImagesGenerated + job.Images.Count, GpuSeconds = row.GpuSeconds + gpu };
        }
        return rows.Values.OrderBy(r => r.Day, StringComparer.Ordinal).ThenBy(r => r.User, StringComparer.Ordinal).ToList();
    }

    /// <summary>The shared "set" of the admin API and the CLI: validates every field before changing any.</summary>
    internal static void Apply(UserRecord user, UserChange change, AccountStore accounts)
    {
        if (change.Role is { } role && !Roles.IsValid(role)) throw new AccountException("role must be admin or user.");
        if (change.PriorityClass is { } p && JobPriority.Parse(p) is null) throw new AccountException("priority_class must be high, normal or low.");
        foreach (var (field, value) in new[] { ("max_queued_jobs", change.MaxQueuedJobs), ("max_pixels", change.MaxPixels), ("max_steps", change.MaxSteps), ("max_count", change.MaxCount) })
            if (value is < 1) throw new AccountException($"{field} must be at least 1.");
        if (change.ImagesPerDay is < 0) throw new AccountException("images_per_day must be at least 0.");
        if (change.Role is not null) user.Role = change.Role;
        if (change.Password is not null) accounts.SetPassword(user, change.Password);
        if (change.PriorityClass is not null) user.PriorityClass = change.PriorityClass;
        user.MaxQueuedJobs = change.MaxQueuedJobs ?? user.MaxQueuedJobs;
        user.ImagesPerDay = change.ImagesPerDay ?? user.ImagesPerDay;
        user.MaxPixels = change.MaxPixels ?? user.MaxPixels;
        user.MaxSteps = change.MaxSteps ?? user.MaxSteps;
        user.MaxCount = change.MaxCount ?? user.MaxCount;
    }

    private static IResult Try(Func<IResult> action, bool notFound = false)
    {
        if (notFound) return Problems.NotFound("user");
        try
        {
            return action();
        }
        catch (AccountException e)
        {
            return Problems.Create(StatusCodes.Status400BadRequest, ProblemCodes.InvalidParameter, e.Message);
        }
    }

    private static string Day(DateTime day) => day.ToString("yyyy-MM-dd", System.Globalization.CultureInfo.InvariantCulture);

    internal static UserDto ToDto(UserRecord u) =>
        new(u.Name, u.Role, u.PasswordHash is not null, u.PriorityClass, u.MaxQueuedJobs, u.ImagesPerDay, u.MaxPixels, u.MaxSteps, u.MaxCount, u.CreatedAt);

    internal static KeyDto ToDto(ApiKeyRecord k) => new(k.Id, k.Name, k.CreatedAt, k.LastUsedAt, k.RevokedAt);
}
