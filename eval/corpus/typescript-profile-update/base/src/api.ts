export interface Profile {
  name: string;
}

export async function saveProfile(userId: string, profile: Profile): Promise<void> {
  const response = await fetch(`/api/users/${userId}`, { method: "PUT", body: JSON.stringify(profile) });
  if (!response.ok) {
    throw new Error(`saving the profile failed: ${response.status}`);
  }
}
