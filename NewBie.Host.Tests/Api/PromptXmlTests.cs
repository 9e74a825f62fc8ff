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
}
