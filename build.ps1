#!/usr/bin/env pwsh
<#
.SYNOPSIS
  Builds, tests and publishes NewBie Server.
.DESCRIPTION
  test     runs the README's test command (every test project in NewBie.slnx).
  publish  produces the single NewBie binary for one runtime and backend in -Output:
           NewBie(.exe) (self-contained, single-file, ReadyToRun) + the native libtorch libraries beside it
           (they cannot live inside a single-file bundle) + wwwroot/ (the admin pages' blazor.web.js)
           + appsettings.json + models.manifest.json + README.md.
           -NoReadyToRun skips the ReadyToRun precompilation (a faster publish, a slower first start): for checks that
           only need the binary to work, such as CI's publish smoke; releases keep it.
  On Linux, run it through the pinned PowerShell tool: `dotnet tool restore && dotnet pwsh build.ps1 publish`.
.EXAMPLE
  ./build.ps1 publish -Runtime win-x64 -Backend cuda -Output out/win-cuda
#>
param(
    [Parameter(Position = 0)][ValidateSet('test', 'publish')][string]$Verb = 'test',
    [ValidateSet('win-x64', 'linux-x64')][string]$Runtime = $(if ($IsWindows) { 'win-x64' } else { 'linux-x64' }),
    [ValidateSet('cpu', 'cuda')][string]$Backend = 'cpu',
    [string]$Output = '',
    [string]$Configuration = 'Release',
    [switch]$NoReadyToRun
)
$ErrorActionPreference = 'Stop'
Set-Location $PSScriptRoot

function Invoke-Dotnet([string[]]$Arguments) {
    Write-Host "dotnet $($Arguments -join ' ')"
    & dotnet @Arguments
    if ($LASTEXITCODE -ne 0) { throw "dotnet $($Arguments[0]) failed with exit code $LASTEXITCODE" }
}

switch ($Verb) {
    'test' {
        Invoke-Dotnet @('test', 'NewBie.slnx')
    }
    'publish' {
        if (-not $Output) { $Output = Join-Path 'out' "$Runtime-$Backend" }
        $commit = (& git rev-parse --short HEAD 2>$null)
        if (-not $commit) { $commit = 'unknown' }
        Invoke-Dotnet @(
            'publish', 'NewBie.Host/NewBie.Host.csproj',
            '-c', $Configuration, '-r', $Runtime, '--self-contained', 'true',
            "-p:NewBieBackend=$Backend",
            '-p:PublishSingleFile=true',
            # libtorch (hundreds of MB, loaded by path with dlopen/LoadLibrary) stays beside the executable.
            '-p:IncludeNativeLibrariesForSelfExtract=false',
            "-p:PublishReadyToRun=$(if ($NoReadyToRun) { 'false' } else { 'true' })",
            "-p:SourceRevisionId=$commit",
            '-o', $Output)
        Copy-Item README.md -Destination $Output -Force
        Write-Host "Published $Runtime/$Backend to $(Resolve-Path $Output)"
    }
}
