using NewBie.Pipeline.Configs;
using NewBie.Pipeline.Sampling;
using TorchSharp;
using static TorchSharp.torch;

namespace NewBie.Pipeline.Tests.NextDiT;

/// <summary>
/// The tiny upstream NextDiT_CLIP run of fixtures/nextdit, to its README tolerance (1e-4 + 1e-4·|expected|). Sizes,
/// batch, caption lengths and CFG cases all come from the fixture; device and dtype from <see cref="Parity"/>.
/// </summary>
[Trait("Category", "Parity")]
public sealed class NextDiTParityTests
{
    private const double Tol = 1e-4;

    public static TheoryData<string> Folders => Fixtures.Folders("nextdit");

    private static NextDiTConfig Config(string folder) => NextDiTConfig.Load(Path.Combine(folder, "config.json"));

    private static Pipeline.NextDiT LoadModel(string folder) =>
        Pipeline.NextDiT.Load(Path.Combine(folder, "weights.safetensors"), Config(folder), Parity.Device, Parity.DType);

    private static Dictionary<string, Tensor> Inputs(string folder) =>
        TensorAssert.ReadAll(Path.Combine(folder, "inputs.safetensors")).ToDictionary(kv => kv.Key, kv => Parity.Input(kv.Value));

    [FixtureTheory("nextdit"), MemberData(nameof(Folders))]
    public void Plain_forward_matches_upstream_velocity_for_a_batch_of_mixed_caption_lengths(string folder)
    {
        var inputs = Inputs(folder);
        var expected = TensorAssert.ReadAll(Path.Combine(folder, "expected.safetensors"));
        using var model = LoadModel(folder);
        using var _ = torch.no_grad();
        var v = model.forward(inputs["x"], inputs["t"], inputs["cap_feats"], inputs["cap_mask"], inputs["clip_text_pooled"]);
        Parity.Close(expected["velocity"], v, Tol, Tol, "velocity");
    }

    [FixtureTheory("nextdit"), MemberData(nameof(Folders))]
    public void Each_sample_run_alone_matches_its_row_of_the_padded_batch(string folder)
    {
        var inputs = Inputs(folder);
        var expected = TensorAssert.ReadAll(Path.Combine(folder, "expected.safetensors"));
        using var model = LoadModel(folder);
        using var _ = torch.no_grad();
        for (var b = 0; b < inputs["x"].shape[0]; b++)
        {
            var rows = TensorIndex.Slice(b, b + 1);
            var v = model.forward(inputs["x"][rows], inputs["t"][rows], inputs["cap_feats"][rows], inputs["cap_mask"][rows], inputs["clip_text_pooled"][rows]);
            Parity.Close(expected["velocity"][rows], v, Tol, Tol, $"velocity of sample {b} alone");
        }
    }

    [FixtureTheory("nextdit"), MemberData(nameof(Folders))]
    public void Time_and_pooled_text_fuse_into_the_upstream_adaln_input(string folder)
    {
        var inputs = Inputs(folder);
        var expected = TensorAssert.ReadAll(Path.Combine(folder, "expected.safetensors"));
        using var model = LoadModel(folder);
        using var _ = torch.no_grad();
        Parity.Close(expected["intermediate.adaln_input"], model.AdaLnInput(inputs["t"], inputs["clip_text_pooled"]), Tol, Tol, "adaln_input");
    }

    [FixtureTheory("nextdit"), MemberData(nameof(Folders))]
    public void Bfloat16_forward_stays_near_the_float32_reference(string folder)
    {
        // Not a parity tolerance: bf16 keeps 8 mantissa bits. It proves the dtype plumbing the GPU path uses
        // (fp32 norms, RoPE and time features around bf16 matmuls) runs and stays close to the reference.
        var inputs = TensorAssert.ReadAll(Path.Combine(folder, "inputs.safetensors"));
        var expected = TensorAssert.ReadAll(Path.Combine(folder, "expected.safetensors"));
        var config = Config(folder);
        using var model = Pipeline.NextDiT.Load(Path.Combine(folder, "weights.safetensors"), config, CPU, bfloat16);
        var v = model.forward(inputs["x"], inputs["t"], inputs["cap_feats"], inputs["cap_mask"], inputs["clip_text_pooled"]);
        Assert.Equal(bfloat16, v.dtype);
        var reference = expected["velocity"];
        var relative = ((v.to(float32) - reference).norm() / reference.norm()).item<float>();
        Assert.True(relative < Parity.ReducedPrecisionRelativeError, $"bf16 velocity is {relative:P1} away from the float32 reference");
    }

    public static TheoryData<string, string> CfgCases()
    {
        var data = new TheoryData<string, string>();
        if (Fixtures.Kind("nextdit") is { } folder)
        {
            using var doc = System.Text.Json.JsonDocument.Parse(File.ReadAllBytes(Path.Combine(folder, "config.json")));
            foreach (var c in doc.RootElement.GetProperty("forward_with_cfg").GetProperty("cases").EnumerateObject())
                data.Add(folder, c.Name);
        }
        return data;
    }

    [FixtureTheory("nextdit"), MemberData(nameof(CfgCases))]
    public void Guided_velocity_matches_upstream_forward_with_cfg(string folder, string caseName)
    {
        var inputs = Inputs(folder);
        var expected = TensorAssert.ReadAll(Path.Combine(folder, "expected.safetensors"));
        using var doc = System.Text.Json.JsonDocument.Parse(File.ReadAllBytes(Path.Combine(folder, "config.json")));
        var spec = doc.RootElement.GetProperty("forward_with_cfg").GetProperty("cases").GetProperty(caseName);
        var cfg = new CfgSettings(spec.GetProperty("cfg_scale").GetDouble(), spec.GetProperty("cfg_trunc").GetDouble(), spec.GetProperty("renorm_cfg").GetDouble());
        var t = inputs[$"{caseName}.t"][0].to(float32).item<float>();
        var (cond, uncond) = CondUncond(inputs);
        var x = inputs["cfg.x"][TensorIndex.Slice(0, 1)];
        using var model = LoadModel(folder);

        var vCond = Guidance.Run(model, x, t, cond);
        var vUncond = Guidance.Run(model, x, t, uncond);
        Parity.Close(expected[$"{caseName}.v_cond"], vCond, Tol, Tol, $"{caseName} v_cond");
        Parity.Close(expected[$"{caseName}.v_uncond"], vUncond, Tol, Tol, $"{caseName} v_uncond");

        var v = Guidance.GuidedVelocity(model, x, t, cond, uncond, cfg);
        var output = expected[$"{caseName}.output"];
        Parity.Close(output[TensorIndex.Slice(0, 1)], v, Tol, Tol, $"{caseName} output (cond half)");
        Parity.Close(output[TensorIndex.Slice(1, 2)], v, Tol, Tol, $"{caseName} output (uncond half)");
    }

    internal static (Conditioning Cond, Conditioning Uncond) CondUncond(Dictionary<string, Tensor> inputs, string prefix = "cfg.")
    {
        Conditioning Row(int i) => new(
            inputs[prefix + "cap_feats"][TensorIndex.Slice(i, i + 1)],
            inputs[prefix + "cap_mask"][TensorIndex.Slice(i, i + 1)],
            inputs[prefix + "clip_text_pooled"][TensorIndex.Slice(i, i + 1)]);
        return (Row(0), Row(1));
    }

    [FixtureTheory("nextdit"), MemberData(nameof(Folders))]
    public void Position_ids_and_patches_match_upstream_patchify_and_embed(string folder)
    {
        var inputs = TensorAssert.ReadAll(Path.Combine(folder, "inputs.safetensors"));
        var expected = TensorAssert.ReadAll(Path.Combine(folder, "expected.safetensors"));
        var config = Config(folder);
        var capLens = inputs["cap_mask"].sum(1).data<long>().ToArray();
        var x = inputs["x"];
        long ht = x.shape[2] / config.PatchSize, wt = x.shape[3] / config.PatchSize;

        var ids = Pipeline.NextDiT.JointPositionIds(capLens, ht, wt);
        Assert.Equal(expected["intermediate.position_ids"].to(int64).data<long>().ToArray(), ids.data<long>().ToArray());
        var patches = Pipeline.NextDiT.Patchify(x, config.PatchSize);
        Assert.True(patches.allclose(expected["intermediate.x_patches"], rtol: 0, atol: 0), "patchified latent differs");
        Assert.True(Pipeline.NextDiT.Unpatchify(patches, ht, wt, config.PatchSize, config.InChannels).allclose(x, rtol: 0, atol: 0),
            "unpatchify is not the inverse of patchify");
    }

    [FixtureTheory("nextdit"), MemberData(nameof(Folders))]
    public void Rope_tables_match_upstream_freqs_cis_on_valid_rows(string folder)
    {
        var inputs = TensorAssert.ReadAll(Path.Combine(folder, "inputs.safetensors"));
        var expected = TensorAssert.ReadAll(Path.Combine(folder, "expected.safetensors"));
        var config = Config(folder);
        var capLens = inputs["cap_mask"].sum(1).data<long>().ToArray();
        long ht = inputs["x"].shape[2] / 2, wt = inputs["x"].shape[3] / 2;
        using var rope = new Modules.Rope(config.AxesDims, config.AxesLens, config.RopeTheta, CPU);

        var (cos, sin) = rope.Lookup(Pipeline.NextDiT.JointPositionIds(capLens, ht, wt));
        var table = expected["intermediate.joint_freqs_cis"];
        var valid = expected["intermediate.joint_mask"].unsqueeze(-1);
        Parity.Close(table.select(-1, 0) * valid, cos * valid, 1e-6, 0, "RoPE cos");
        Parity.Close(table.select(-1, 1) * valid, sin * valid, 1e-6, 0, "RoPE sin");
    }
}
