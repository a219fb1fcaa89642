import { saveProfile } from "./api";

export async function updateName(userId: string, name: string): Promise<boolean> {
  if (!name.trim()) {
    return false;
  }
  saveProfile(userId, { name });
  return true;
}
