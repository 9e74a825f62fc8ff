using System.Security.Claims;
using Microsoft.AspNetCore.Components;
using Microsoft.AspNetCore.Components.Authorization;
using Microsoft.AspNetCore.Components.Routing;
using Microsoft.AspNetCore.Components.HtmlRendering.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using NewBie.Host.Accounts;
using NewBie.Host.Admin.Pages;
using NewBie.Host.Studio.Pages;

namespace NewBie.Host.Tests.Studio;

/// <summary>
/// The circuit hub is open to every signed-in user (the studio needs it), so the components check the circuit's own
/// user: rendered with a plain user's circuit an admin page refuses, a studio page shows that user's own things.
/// </summary>
public sealed class CircuitUserTests : IDisposable
{
    private readonly NewBieApplication _app = new();

    public void Dispose() => _app.Dispose();

    private async Task<string> RenderAsAsync<TPage>(string name, string role) where TPage : IComponent
    {
        _ = _app.Server;
        await using var scope = _app.Services.CreateAsyncScope();
        var principal = new ClaimsPrincipal(new ClaimsIdentity([new Claim(ClaimTypes.Name, name), new Claim(ClaimTypes.Role, role)], "test"));
        // What the circuit host does when a circuit opens: the hub connection's user becomes the components' user.
        ((IHostEnvironmentAuthenticationStateProvider)scope.ServiceProvider.GetRequiredService<AuthenticationStateProvider>())
            .SetAuthenticationState(Task.FromResult(new AuthenticationState(principal)));
        ((IHostEnvironmentNavigationManager)scope.ServiceProvider.GetRequiredService<NavigationManager>()).Initialize("http://localhost/", "http://localhost/gallery");
        await using var renderer = new AnyModeRenderer(scope.ServiceProvider);
        return await renderer.Dispatcher.InvokeAsync(async () =>
        {
            var root = renderer.BeginRenderingComponent(typeof(TPage), ParameterView.Empty);
            await root.QuiescenceTask;
            using var html = new StringWriter();
            root.WriteHtmlTo(html);
            return html.ToString();
        });
    }

    /// <summary>Renders an interactive page's component in place (its first render, as on a circuit; no after-render loop).</summary>
    private sealed class AnyModeRenderer(IServiceProvider services) : StaticHtmlRenderer(services, NullLoggerFactory.Instance)
    {
        protected override IComponent ResolveComponentForRenderMode(Type componentType, int? parentComponentId,
            IComponentActivator componentActivator, IComponentRenderMode renderMode) => componentActivator.CreateInstance(componentType);
    }

    [Fact]
    public async Task An_admin_page_refuses_a_circuit_of_a_plain_user_and_serves_an_admins()
    {
        await Assert.ThrowsAsync<UnauthorizedAccessException>(() => RenderAsAsync<QueuePage>("alice", Roles.User));
        await Assert.ThrowsAsync<UnauthorizedAccessException>(() => RenderAsAsync<UsersPage>("alice", Roles.User));

        var html = await RenderAsAsync<QueuePage>("boss", Roles.Admin);

        Assert.Contains("id=\"worker-state\"", html);
    }

    [Fact]
    public async Task A_studio_page_shows_the_circuits_user_only_their_own_images()
    {
        var alice = _app.ClientWithKey("alice");
        var job = (await alice.SubmitAsync(new { prompt = "alice's", width = 256, height = 256, steps = 2 })).Str("id");
        await alice.WaitForStatusAsync(job, "succeeded");

        var asAlice = await RenderAsAsync<GalleryPage>("alice", Roles.User);
        var asBob = await RenderAsAsync<GalleryPage>("bob", Roles.User);

        Assert.Contains($"id=\"image-{job}-0\"", asAlice);
        Assert.DoesNotContain(job, asBob);
        Assert.Contains("id=\"gallery-empty\"", asBob);
    }
}
