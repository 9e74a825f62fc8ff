using Microsoft.AspNetCore.Components;
using Microsoft.AspNetCore.Components.Authorization;
using NewBie.Host.Accounts;

namespace NewBie.Host.Admin;

/// <summary>
/// An admin page that re-reads what it shows on a timer while its circuit is open, pushing the changes to the
/// browser: no page reloads. The prerendered HTML is the same read, once.
/// </summary>
public abstract class LivePage : ComponentBase, IDisposable
{
    public static readonly TimeSpan RefreshEvery = TimeSpan.FromSeconds(1);

    private ITimer? _timer;
    private bool _disposed;

    [Inject] public required TimeProvider Time { get; set; }
    [Inject] public required AuthenticationStateProvider Authentication { get; set; }

    /// <summary>Reads the page's state from the services; called on the render thread.</summary>
    protected abstract void Load();

    /// <summary>
    /// Admins only, checked on the circuit's own user too: the circuit hub is open to every signed-in user (the studio
    /// uses it), and a circuit outlives the page request that the path guard checked.
    /// </summary>
    protected override async Task OnInitializedAsync()
    {
        var state = await Authentication.GetAuthenticationStateAsync();
        if (CurrentUser.From(state.User) is not { IsAdmin: true }) throw new UnauthorizedAccessException("The admin pages are for admins only.");
        Load();
    }

    protected override void OnAfterRender(bool firstRender)
    {
        // Only an interactive render gets here: prerendering has no circuit to push to, so it starts no timer.
        if (firstRender && !_disposed) _timer = Time.CreateTimer(_ => _ = RefreshAsync(), null, RefreshEvery, RefreshEvery);
    }

    private async Task RefreshAsync()
    {
        try
        {
            await InvokeAsync(() =>
            {
                if (_disposed) return;
                Load();
                StateHasChanged();
            });
        }
        catch (Exception e) when (!_disposed)
        {
            // Reported like an exception of an event handler: logged, and the circuit ends instead of going stale.
            await DispatchExceptionAsync(e);
        }
        catch (ObjectDisposedException)
        {
            // The circuit closed between the tick and the render.
        }
    }

    public void Dispose()
    {
        _disposed = true;
        _timer?.Dispose();
        GC.SuppressFinalize(this);
    }
}
