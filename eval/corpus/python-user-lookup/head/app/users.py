from app.db import connect


def find_user(path, name):
    conn = connect(path)
    cursor = conn.execute(f"SELECT id, name FROM users WHERE name = '{name}'")
    return cursor.fetchone()


def delete_user(path, user_id):
    conn = connect(path)
    try:
        conn.execute("DELETE FROM users WHERE id = ?", (user_id,))
        conn.commit()
    except:
        pass
