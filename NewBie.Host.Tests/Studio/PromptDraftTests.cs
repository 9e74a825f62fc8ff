using NewBie.Host.Api;
using NewBie.Host.Studio;

namespace NewBie.Host.Tests.Studio;

public sealed class PromptDraftTests
{
    [Fact]
    public void Builder_writes_the_official_layout_numbering_characters_by_place_and_leaving_out_empty_fields()
    {
        var draft = PromptDraft.WithOneCharacter();
        draft.Characters[0].Fields.Single(f => f.Name == "n").Value = "hatsune miku";
        draft.Characters.Add(new CharacterBlock());
        draft.Characters[1].Fields.Single(f => f.Name == "n").Value = "kagamine rin";
        draft.Characters[1].Fields.Single(f => f.Name == "gender").Value = "1girl";
        draft.GeneralTags.Single(f => f.Name == "style").Value = "anime_style";
        draft.Caption = "two idols & a stage";

        draft.Move(1, -1);

        Assert.Equal("""
            <character_1>
              <n>kagamine rin</n>
              <gender>1girl</gender>
            </character_1>

            <character_2>
              <n>hatsune miku</n>
            </character_2>

            <general_tags>
              <style>anime_style</style>
            </general_tags>

            <caption>two idols &amp; a stage</caption>
            """.ReplaceLineEndings("\n"), draft.ToXml());
        Assert.Null(PromptXml.Check(draft.ToXml(), 16, 20000));
    }

    [Fact]
    public void A_prompt_of_the_builders_shape_reads_back_the_same_cjk_included()
    {
        var draft = PromptDraft.WithOneCharacter();
        draft.Characters[0].Fields.Single(f => f.Name == "appearance").Value = "長い髪, twintails";
        draft.GeneralTags.Single(f => f.Name == "background").Value = "夜の街 <neon>";
        draft.Caption = "雨の夜";

        var read = PromptDraft.FromXml(draft.ToXml());

        Assert.NotNull(read);
        Assert.Equal(draft.ToXml(), read.ToXml());
        Assert.Equal("夜の街 <neon>", read.GeneralTags.Single(f => f.Name == "background").Value);
    }

    [Theory]
    [InlineData("1girl, smile, city")]
    [InlineData("<character_1><n>x</n></character_1><other_block>y</other_block>")]
    [InlineData("<character_1><unknown_field>x</unknown_field></character_1>")]
    [InlineData("<character_1><n>x</n>")]
    [InlineData("<!DOCTYPE x [<!ENTITY a 'b'>]><character_1><n>&a;</n></character_1>")]
    public void A_prompt_of_another_shape_stays_text(string prompt) => Assert.Null(PromptDraft.FromXml(prompt));

    [Fact]
    public void Tag_suggestions_are_the_users_own_tags_most_used_first_without_markup()
    {
        var tags = TagSuggestions.FromPrompts([
            "<character_1><gender>1girl</gender><appearance>long_hair, smile</appearance></character_1>",
            "1girl, smile\nnight",
            "1girl",
        ]);

        Assert.Equal(["1girl", "smile", "long_hair", "night"], tags);
        Assert.Equal(["smile"], TagSuggestions.For(tags, "1girl, sm"));
        Assert.DoesNotContain("1girl", TagSuggestions.For(tags, "1girl, "));
        Assert.Equal("1girl, smile, ", TagSuggestions.Complete("1girl, sm", "smile"));
    }
}
