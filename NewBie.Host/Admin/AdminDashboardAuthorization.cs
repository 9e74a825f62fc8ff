using Hangfire.Dashboard;
using NewBie.Host.Accounts;

namespace NewBie.Host.Admin;

/// <summary>
/// The Hangfire dashboard for admins only, by the same identity as the API (admin cookie or admin key); being on
/// the loopback is not enough by itself.
/// </summary>
public sealed class AdminDashboardAuthorization : IDashboardAuthorizationFilter
{
    public bool Authorize(DashboardContext context) =>
        CurrentUser.From(context.GetHttpContext().User) is { IsAdmin: true };
}
