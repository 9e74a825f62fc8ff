using NewBie.Pipeline.Tokenizers;

namespace NewBie.Pipeline.Tests.Tokenizers;

public sealed class PromptTemplateTests
{
    [Theory]
    [InlineData("<character_1>\n<n>x</n>", true)]
    [InlineData("  \n\t<general_tags>", true)]
    [InlineData("<caption>a girl</caption>", true)]
    [InlineData("1girl, <b>bold</b>", false)]
    [InlineData("< a", false)]
    [InlineData("<1girl>", false)]
    [InlineData("<", false)]
    [InlineData("   ", false)]
    [InlineData("", false)]
    public void Xml_prompt_starts_with_a_tag_after_blanks(string prompt, bool xml) => Assert.Equal(xml, PromptTemplate.IsXml(prompt));

    [Fact]
    public void Auto_gives_xml_prompts_the_xml_training_sentence_and_others_the_tag_sentence()
    {
        Assert.Equal(PromptTemplate.XmlSystemPrompt, PromptTemplate.ResolveSystemPrompt("<character_1></character_1>", "auto"));
        Assert.Equal(PromptTemplate.TagSystemPrompt, PromptTemplate.ResolveSystemPrompt("1girl, solo", "auto"));
        Assert.Equal(PromptTemplate.TagSystemPrompt, PromptTemplate.ResolveSystemPrompt("1girl, solo", "AUTO"));
        Assert.EndsWith("<Prompt Start> ", PromptTemplate.XmlSystemPrompt);
        Assert.Equal("You are an assistant designed to generate high-quality anime images based on xml format prompts. <Prompt Start> ", PromptTemplate.XmlSystemPrompt);
        Assert.Equal("You are an assistant designed to generate high-quality anime images with the highest degree of image-text alignment based on textual prompts. <Prompt Start> ", PromptTemplate.TagSystemPrompt);
    }

    [Fact]
    public void None_gives_no_system_prompt_and_anything_else_is_used_literally()
    {
        Assert.Equal("", PromptTemplate.ResolveSystemPrompt("1girl", "none"));
        Assert.Equal("Draw: ", PromptTemplate.ResolveSystemPrompt("1girl", "Draw: "));
        Assert.Equal(new PromptTexts("Draw: 1girl", "1girl", "Draw: "), PromptTemplate.Apply("1girl", "Draw: "));
    }

    [Fact]
    public void System_prompt_goes_to_gemma_only_and_jina_reads_the_raw_prompt()
    {
        var texts = PromptTemplate.Apply("<character_1></character_1>", PromptTemplate.Auto);
        Assert.Equal(PromptTemplate.XmlSystemPrompt + "<character_1></character_1>", texts.GemmaText);
        Assert.Equal("<character_1></character_1>", texts.JinaText);
        Assert.Equal(PromptTemplate.XmlSystemPrompt, texts.SystemPrompt);
    }

    [Theory]
    [InlineData("auto")]
    [InlineData("none")]
    [InlineData("Draw: ")]
    public void Empty_prompt_stays_empty_for_both_encoders(string systemPrompt) =>
        Assert.Equal(new PromptTexts("", "", ""), PromptTemplate.Apply("", systemPrompt));

    public static TheoryData<string, string> BothFixtures()
    {
        var data = new TheoryData<string, string>();
        if (Fixtures.Kind("tokenizers") is { } gemma && Fixtures.Kind("tokenizers-xlmr") is { } xlmr) data.Add(gemma, xlmr);
        return data;
    }

    [FixtureTheory("tokenizers", "tokenizers-xlmr"), MemberData(nameof(BothFixtures)), Trait("Category", "Parity")]
    public void Inspect_reports_the_official_xml_example_as_512_gemma_tokens_with_23_cut(string gemmaFolder, string xlmrFolder)
    {
        var xml = TokenizerFixtures.Case(TokenizerFixtures.Cases(gemmaFolder), "xml_example").GetProperty("text").GetString()!;
        var jinaLength = TokenizerFixtures.Case(TokenizerFixtures.Cases(xlmrFolder), "xml_example").GetProperty("len").GetInt32();

        var report = PromptTemplate.Inspect(xml, PromptTemplate.Auto, TokenizerFixtures.Gemma(gemmaFolder), TokenizerFixtures.Xlmr(xlmrFolder));

        Assert.Equal(new PromptReport(512, 23, jinaLength, 0, PromptTemplate.XmlSystemPrompt), report);
    }

    [Fact]
    public void Inspect_of_an_empty_negative_counts_only_the_special_tokens()
    {
        var gemma = GemmaTokenizer.FromJson(new MemoryStream(System.Text.Encoding.UTF8.GetBytes(TinyTokenizers.GemmaJson())));
        var jina = XlmRobertaTokenizer.FromJson(new MemoryStream(System.Text.Encoding.UTF8.GetBytes(TinyTokenizers.JinaJson())));
        Assert.Equal(new PromptReport(1, 0, 2, 0, ""), PromptTemplate.Inspect("", PromptTemplate.Auto, gemma, jina));
    }
}
