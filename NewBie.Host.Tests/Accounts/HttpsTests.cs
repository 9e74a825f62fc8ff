using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace NewBie.Host.Tests.Accounts;

public sealed class HttpsTests
{
    [Fact]
    public async Task Kestrel_serves_https_from_the_configured_certificate_file()
    {
        var folder = Directory.CreateTempSubdirectory("newbie-cert-").FullName;
        try
        {
            using var certificate = SelfSigned();
            var pfx = Path.Combine(folder, "server.pfx");
            await File.WriteAllBytesAsync(pfx, certificate.Export(X509ContentType.Pfx, "pfx-password"));
            var port = FreePort();
            using var app = new NewBieApplication(new()
            {
                ["Kestrel:Endpoints:Https:Url"] = $"https://127.0.0.1:{port}",
                ["Kestrel:Endpoints:Https:Certificate:Path"] = pfx,
                ["Kestrel:Endpoints:Https:Certificate:Password"] = "pfx-password",
            });
            app.UseKestrel();
            app.StartServer();
            using var handler = new HttpClientHandler
            {
                // Trust exactly the certificate the test made, nothing else.
                ServerCertificateCustomValidationCallback = (_, presented, _, _) => presented?.RawData.AsSpan().SequenceEqual(certificate.RawData) == true,
            };
            using var client = new HttpClient(handler) { BaseAddress = new Uri($"https://127.0.0.1:{port}") };

            using var response = await client.GetAsync("/healthz");

            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    private static X509Certificate2 SelfSigned()
    {
        using var key = RSA.Create(2048);
        var request = new CertificateRequest("CN=127.0.0.1", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        var san = new SubjectAlternativeNameBuilder();
        san.AddIpAddress(IPAddress.Loopback);
        request.CertificateExtensions.Add(san.Build());
        return request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1));
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
