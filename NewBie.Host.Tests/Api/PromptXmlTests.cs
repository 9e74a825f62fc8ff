using NewBie.Host.Api;

namespace NewBie.Host.Tests.Api;

public sealed class PromptXmlTests
{
    [Theory]
    [InlineData("<character_1>x</character_1>", true)]
    [InlineData("  \n <general_tags/>", true)]
    [InlineData("<!DOCTYPE x>", true)]
    [InlineData("<?xml version=\"1.0\"?><a/>", true)]
    [InlineData("1girl, <3 smile", false)]
    [InlineData("< not a tag", false)]
    [InlineData("a <b>bold</b> prompt", false)]
    [InlineData("<3", false)]
    public void Prompt_is_xml_when_it_opens_with_markup(string prompt, bool xml) => Assert.Equal(xml, PromptXml.LooksLikeXml(prompt));

    [Fact]
    public void Unclosed_element_is_reported_at_its_place_in_the_prompt_without_the_synthetic_root()
    {
        var error = PromptXml.Check("<a>", maxDepth: 8, maxChars: 100);

        Assert.NotNull(error);
        Assert.Contains("'a' start tag on line 1, column 2", error);
        Assert.Contains("the end of the prompt", error);
        Assert.DoesNotContain("'prompt'", error);
    }
}
