using System.Net;
using System.Text.RegularExpressions;

namespace NewBie.Host.Api;

/// <summary>
/// Who is calling. Until accounts exist: a loopback caller is whoever its X-User header names (default "local");
/// anyone else is refused. Resolved once per request by <see cref="Require"/>, then bound into handlers.
/// </summary>
public sealed partial record CurrentUser(string Id)
{
    public const string Header = "X-User", DefaultId = "local";
    private const string ItemKey = "NewBie.CurrentUser";

    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")]
    private static partial Regex ValidId();

    /// <summary>Never null: binding runs before endpoint filters, and <see cref="Require"/> answers for a refused caller.</summary>
    public static ValueTask<CurrentUser?> BindAsync(HttpContext context) =>
        ValueTask.FromResult<CurrentUser?>(Resolve(context).User ?? new CurrentUser(""));

    /// <summary>An endpoint filter for a group: every route below it has a caller, or answers 401 / 400.</summary>
    public static async ValueTask<object?> Require(EndpointFilterInvocationContext context, EndpointFilterDelegate next) =>
        Resolve(context.HttpContext).Problem ?? await next(context);

    private static (CurrentUser? User, IResult? Problem) Resolve(HttpContext http)
    {
        if (http.Items[ItemKey] is ValueTuple<CurrentUser?, IResult?> resolved) return resolved;
        var remote = http.Connection.RemoteIpAddress;
        var header = http.Request.Headers[Header].ToString();
        var id = header.Length == 0 ? DefaultId : header;
        // The in-process test server has no remote address: it is as local as loopback.
        resolved = remote is not null && !IPAddress.IsLoopback(remote)
            ? (null, Problems.Create(StatusCodes.Status401Unauthorized, ProblemCodes.Unauthorized, "Only local callers are served until accounts exist."))
            : !ValidId().IsMatch(id)
                ? (null, Problems.InvalidParameter(Header, "X-User must be 1-64 letters, digits or . _ @ - and start with a letter or digit."))
                : (new CurrentUser(id), null);
        http.Items[ItemKey] = resolved;
        return resolved;
    }
}
