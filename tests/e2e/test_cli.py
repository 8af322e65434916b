"""The run contract: ``python -m bot`` as an operator meets it."""

from __future__ import annotations

import asyncio
import re
import signal
from pathlib import Path

from bot.core import character_texts
from bot.core.public_ids import PUBLIC_ID
from tests.conftest import image_bytes
from tests.e2e.bot_process import SECRET, run_bot, start_bot
from tests.fakes.flow_server import FakeFlowServer
from tests.fakes.telegram_server import FakeTelegramServer


async def test_no_platform_token_exits_2_with_one_clear_line(tmp_path: Path) -> None:
    code, out, err = await run_bot(env={"USEAPI_TOKEN": SECRET}, cwd=tmp_path)
    assert code == 2
    assert out == ""
    assert err.strip().splitlines() == [
        "error: no chat platform is configured: set DISCORD_TOKEN and/or TELEGRAM_TOKEN "
        "(or try `python -m bot console`)"
    ]


async def test_no_useapi_token_exits_2_naming_it(tmp_path: Path) -> None:
    code, _, err = await run_bot(env={"TELEGRAM_TOKEN": "1:tg-tok1"}, cwd=tmp_path)
    assert code == 2
    assert len(err.strip().splitlines()) == 1
    assert "USEAPI_TOKEN is not set" in err


async def test_bad_setting_names_the_variable_and_hides_the_token(tmp_path: Path) -> None:
    code, _, err = await run_bot(
        env={"USEAPI_TOKEN": SECRET, "BOT_RUNNING_PER_USER": "lots"}, cwd=tmp_path
    )
    assert code == 2
    assert "BOT_RUNNING_PER_USER must be a number" in err
    assert SECRET not in err


async def test_help_lists_the_commands_and_points_to_env_example(tmp_path: Path) -> None:
    code, out, _ = await run_bot("--help", env={}, cwd=tmp_path)
    assert code == 0
    assert "console" in out
    assert ".env.example" in out
    assert "DISCORD_TOKEN" in out


async def test_env_file_in_the_working_directory_is_read(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(f"USEAPI_TOKEN={SECRET}\n")
    code, _, err = await run_bot(env={}, cwd=tmp_path)
    assert code == 2
    assert "no chat platform is configured" in err


async def test_console_session_against_the_fake_upstream(tmp_path: Path) -> None:
    reference = tmp_path / "cat.png"
    reference.write_bytes(image_bytes("PNG"))
    script = "\n".join(
        [
            f"a cat in a hat --count 2 --model pro --ref {reference}",
            "U2",
            "R1 the same cat at night",
            "--count 9 broken",
            "queue",
            "history",
        ]
    )
    async with FakeFlowServer() as flow:
        code, out, err = await run_bot(
            "console",
            env={
                "USEAPI_TOKEN": "test-token",
                "USEAPI_BASE_URL": flow.base_url,
                "DATABASE_URL": "sqlite:///state/bot.sqlite3",
                "BOT_LOG_LEVEL": "DEBUG",
            },
            cwd=tmp_path,
            stdin=script.encode(),
        )
    assert code == 0, err
    first, upscale, edit = re.findall(rf"^✅ #({PUBLIC_ID}) · ", out, re.MULTILINE)
    assert f"✅ #{first} · nano-banana-pro" in out
    assert "⬆️ Upscale 1 · ✏️ Edit 1 · ⬆️ Upscale 2 · ✏️ Edit 2 · 🎲 Draw again" in out
    assert f"✅ #{upscale} · Upscaled image 2 of #{first} to 2k" in out
    # An edit keeps the source's model, shape and count; it says what it was made from.
    assert f"✅ #{edit} · nano-banana-pro" in out
    assert f"from #{first} · ✏️ Edit 1" in out
    assert "Your jobs, newest first (page 1):" in out
    assert "❌ The count must be a whole number from 1 to 4" in out
    saved = sorted(p.name for p in (tmp_path / "images").iterdir())
    assert saved == sorted(
        [
            f"{first}_image1.jpg",
            f"{first}_image2.jpg",
            f"{edit}_image1.jpg",
            f"{edit}_image2.jpg",
            f"{upscale}_upscaled1.jpg",
        ]
    )
    assert (tmp_path / "state" / "bot.sqlite3").exists()
    # Even at DEBUG, the token never reaches the logs.
    assert "test-token" not in err
    assert "test-token" not in out


async def test_console_with_a_folder_it_cannot_write_exits_2_naming_the_setting(
    tmp_path: Path,
) -> None:
    (tmp_path / "afile").write_text("not a folder")
    code, out, err = await run_bot(
        "console",
        env={
            "USEAPI_TOKEN": SECRET,
            "USEAPI_BASE_URL": "http://127.0.0.1:9",  # nothing listens: the check comes first
            "BOT_CONSOLE_DIR": "afile/images",
        },
        cwd=tmp_path,
        stdin=b"a cat\n",
    )
    assert code == 2
    assert out == ""
    (line,) = err.strip().splitlines()
    assert line.startswith("error: BOT_CONSOLE_DIR=afile/images can't be written")
    assert SECRET not in err


async def test_console_says_when_a_picture_cannot_be_saved_and_still_ends(tmp_path: Path) -> None:
    """The folder went away under the console (a disk unmounted, a file put in its place): the
    user is told which job, and the end of input ends the console instead of waiting forever."""
    async with FakeFlowServer() as flow:
        flow.hold()
        console = await start_bot(
            "console",
            env={"USEAPI_TOKEN": "test-token", "USEAPI_BASE_URL": flow.base_url},
            cwd=tmp_path,
        )
        assert console.stdin is not None
        assert console.stdout is not None
        console.stdin.write(b"a cat\n")
        await console.stdin.drain()
        queued = b""
        while b"Queued" not in queued:
            queued = await asyncio.wait_for(console.stdout.readline(), 30)
        (tmp_path / "images").rmdir()
        (tmp_path / "images").write_text("in the folder's place")
        flow.release()
        out, err = await asyncio.wait_for(console.communicate(b""), 60)  # b"": the input ends
    assert console.returncode == 0, err.decode()[-2000:]
    (public_id,) = re.findall(rf"^#({PUBLIC_ID}) ⏳", queued.decode(), re.MULTILINE)
    assert f"❌ #{public_id}'s images could not be saved in images" in out.decode()
    assert f"`show #{public_id}`" in out.decode()


async def test_console_makes_lists_uses_and_deletes_a_character(tmp_path: Path) -> None:
    face = tmp_path / "face.png"
    face.write_bytes(image_bytes("PNG"))
    # Two sessions on one store: the end of the first one's input waits for its job, which a
    # delete typed right after it could otherwise overtake (a queued job's character is gone).
    sessions = [
        [f"character create Carol --ref {face}", "character list", "@carol reads a map --count 1"],
        ["character delete carol", "character list"],
    ]
    out = ""
    async with FakeFlowServer() as flow:
        for session in sessions:
            code, said, err = await run_bot(
                "console",
                env={"USEAPI_TOKEN": "test-token", "USEAPI_BASE_URL": flow.base_url},
                cwd=tmp_path,
                stdin="\n".join(session).encode(),
            )
            assert code == 0, err
            out += said
        sent = flow.images_requests()[-1].json
    assert character_texts.character_created("Carol") in out
    assert "@Carol · 1 picture" in out
    assert re.search(rf"^✅ #{PUBLIC_ID} · nano-banana-2", out, re.MULTILINE)
    assert "Characters: Carol" in out
    assert character_texts.character_deleted("Carol") in out
    assert character_texts.NO_CHARACTERS_YET in out
    assert sent is not None
    assert sent["prompt"] == "@character_1 reads a map"


async def test_python_m_bot_serves_telegram_and_stops_cleanly(tmp_path: Path) -> None:
    token = "123456:telegram-secret-token"
    async with FakeFlowServer(token=SECRET) as flow, FakeTelegramServer(token=token) as tg:
        process = await start_bot(
            env={
                "USEAPI_TOKEN": SECRET,
                "USEAPI_BASE_URL": flow.base_url,
                "TELEGRAM_TOKEN": token,
                "TELEGRAM_API_URL": tg.root,
                "BOT_LOG_LEVEL": "DEBUG",
            },
            cwd=tmp_path,
        )
        try:
            await tg.wait_for("deleteWebhook", timeout=15)
            await tg.post_message(7, 7, "a lighthouse in a storm --count 2 --model pro")
            # The album, then its keyboard on what was the status message.
            [keyboard] = await tg.wait_for(
                "editMessageText", predicate=lambda c: "reply_markup" in c.params, timeout=15
            )
            album = tg.calls_of("sendMediaGroup")
            assert len(album) == 1
            assert "nano-banana-pro" in str(keyboard.params["text"])
            shown = next(m for m in tg.sent_messages(7) if m.get("reply_markup"))
            upscale_2 = shown["reply_markup"]["inline_keyboard"][1][0]["callback_data"]
            assert re.fullmatch(rf"u:{PUBLIC_ID}:2", upscale_2)
            await tg.press_button(7, 7, shown["message_id"], upscale_2)
            # Done before its status message had its turn (the chat rests after the album): a
            # file of its own.
            [upscale] = await tg.wait_for("sendDocument", timeout=15)
            assert upscale.files
        finally:
            process.send_signal(signal.SIGTERM)
            out, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0, err.decode()[-2000:]
    logs = out.decode() + err.decode()
    assert "stopped" in logs
    for secret in (token, SECRET, "telegram-secret-token"):
        assert secret not in logs


async def test_an_unreachable_database_is_one_line_without_its_password(tmp_path: Path) -> None:
    url = "postgresql://bot:s3cr3t-x@/bot?host=/nonexistent/socket/dir"
    env = {"USEAPI_TOKEN": SECRET, "DATABASE_URL": url, "BOT_LOG_LEVEL": "DEBUG"}
    async with FakeFlowServer(token=SECRET) as flow:
        code, out, err = await run_bot(
            "console", env={**env, "USEAPI_BASE_URL": flow.base_url}, cwd=tmp_path
        )
    assert code == 2
    assert err.splitlines()[-1].startswith(
        "error: can't open the store at postgresql://bot:***@/bot?host=/nonexistent/socket/dir: "
    )
    assert "s3cr3t-x" not in out + err
